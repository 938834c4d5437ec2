"""What a Messages request may carry, counted before any of it is read or reaches a backend
(issue #56).

Anthropic's document bounds almost nothing: its API reference gives no maximum for
``stop_sequences``, for a system prompt's blocks or a tool result's. And the request is
served as a chat request made here (``request.py``), past the chat lane's own validation:
chat's limit of 4 stop strings never applied, and 200 000 ``stop_sequences`` were each looked
for at every token on the engine's thread (another tenant's 20-token chat took 7.9 s beside
one such request, 1.1 s alone). So the Messages lane bounds them itself, in the service
both of its lanes call (a request, a Message Batch's line), before translating.

Not chat's schema run on the chat request made (one rule, but the wrong one): where the two
documents differ, each is right for its own clients. Anthropic takes tool names of 128
characters (Claude Code's MCP tools, ``mcp__<server>__<tool>``) where OpenAI's pattern stops
at 64, and any number of stop sequences where OpenAI takes 4: a Messages request that
Anthropic answers would be refused. So each bound here says why it is the number it is:

- The lists chat's budgets bound (``budgets.py``: messages, tools, each message's blocks),
  by chat's numbers: the same names in both documents.
- A system prompt's blocks, a tool result's blocks and ``context_management.edits``: inner
  lists, counted in the same total as each message's blocks (``budgets.MAX_PARTS``), as
  chat counts a system or tool message's parts there.
- ``stop_sequences``: at most ``MAX_STOP_SEQUENCES`` strings of ``MAX_STOP_BYTES`` in all.
  The bytes are chat's own most, rounded up (4 strings of 1000 characters: 16 000 bytes
  at 4 bytes a character). The count is 64 times chat's 4: Anthropic documents none, so a client may
  send more than 4 (none known sends more than a handful; Claude Code sends none); a token
  no longer costs more with more strings (``backends/llama/engine/text.py``: one automaton),
  and what the count still bounds is that automaton's building (0.5 ms for 256 here) and
  the list carried to the engine. Each string stays within the engine's own 1000
  characters (``backends/llama/params.py``, a local model's rule for every lane).
"""

from __future__ import annotations

from typing import Any

from llm_backend.budgets import MAX_PARTS, check_count, check_lists
from llm_backend.json.types import Json

from ..errors import stop_sequences_too_large, too_many_blocks

CHAT = "createChatCompletion"
MAX_STOP_SEQUENCES = 256
MAX_STOP_BYTES = 16 * 1024


def check(body: Json) -> None:
    """``body``'s lists and stop sequences within their bounds (the module's docstring), each
    list counted before any of its items is read; else the 400 naming what is past one."""
    check_lists(CHAT, body)  # messages and tools first: what follows walks them
    total = 0
    for param, blocks in _inner_lists(body):
        check_count(blocks, MAX_PARTS, param)
        total += len(blocks)
        if total > MAX_PARTS:
            raise too_many_blocks(param, MAX_PARTS)
    _check_stop_sequences(body.get("stop_sequences"))


def _inner_lists(body: Json) -> list[tuple[str, list[Any]]]:
    """Every list of blocks the request holds (``check_lists`` has bounded the messages and
    each message's blocks, so this walk is bounded)."""
    found: list[tuple[str, list[Any]]] = []
    if isinstance(body.get("system"), list):
        found.append(("system", body["system"]))
    for index, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        found.append((f"messages[{index}].content", content))
        for number, block in enumerate(content):
            if isinstance(block, dict) and isinstance(block.get("content"), list):  # a tool result's
                found.append((f"messages[{index}].content[{number}].content", block["content"]))
    edits = (body.get("context_management") or {}).get("edits")
    if isinstance(edits, list):
        found.append(("context_management.edits", edits))
    return found


def _check_stop_sequences(stops: Any) -> None:
    if not isinstance(stops, list):
        return
    check_count(stops, MAX_STOP_SEQUENCES, "stop_sequences")
    size = sum(len(stop.encode("utf-8", "surrogatepass")) for stop in stops if isinstance(stop, str))
    if size > MAX_STOP_BYTES:
        raise stop_sequences_too_large(MAX_STOP_BYTES, size)

