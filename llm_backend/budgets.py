"""How many items a request's lists may hold (issue #39), and the errors past a budget.

An item of a list costs work and memory whatever it holds: an empty message is templated,
an empty moderation input gets a result of 13 categories (200 k ``""`` took the API process
+933 MB), an empty tool is rendered into the prompt. So every list a served operation
takes is counted, before anything is done with its items, against OpenAI's bound where
OpenAI has one (128 tools, 2048 messages, 128 tool calls a message), and against ours where
it has none (docs/SECURITY.md, budgets). Counting is ``len()`` of the lists named here (and
of each item's inner list only once the outer one has passed its bound), so it costs the
same whatever the items hold.

The answer past a bound is OpenAI's: 400 ``array_above_max_length`` naming the list
(``messages[3].tool_calls``), worded as OpenAI words it.
"""

from __future__ import annotations

from typing import Any

from .errors import array_above_max_length, bad_request

MAX_MESSAGES = 2048
MAX_TOOLS = 128
MAX_TOOL_CALLS = 128
MAX_INPUT_ITEMS = 2048
"""Responses' input items: OpenAI documents no bound; as many as chat's messages, which they
become (``serving/responses/items.py``)."""
MAX_PARTS = 8192
"""The items of a request's inner lists in total (every message's content parts and tool
calls): ours, four a message at the most messages; each inner list has its own bound too."""
MAX_CHARS_PER_TOKEN = 64
"""No real tokenizer's tokens are longer than this on average: a text this many times a
token limit cannot fit it, and is refused before it is tokenized or rendered (rendering and
tokenizing 200 000 messages held the engine for minutes; tokenizing 8 MiB for an embedding
input grew the API process by 608 MiB)."""
MAX_PROMPTS = 2048
"""Completions' prompts: ours, as many as an embeddings request's inputs (OpenAI's 2048);
each is a generation (``n`` of them), decoded from token ids first when it is an array."""

# operationId ⇒ (path, bound): a path is keys into the body, "*" for each item of a list.
LISTS: dict[str, tuple[tuple[tuple[str, ...], int], ...]] = {
    "createChatCompletion": (
        (("messages",), MAX_MESSAGES),
        (("tools",), MAX_TOOLS),
        (("functions",), MAX_TOOLS),
        (("messages", "*", "tool_calls"), MAX_TOOL_CALLS),
        (("messages", "*", "content"), MAX_PARTS),
    ),
    "createResponse": (
        (("input",), MAX_INPUT_ITEMS),
        (("tools",), MAX_TOOLS),
        (("input", "*", "content"), MAX_PARTS),
    ),
}


def check_count(value: Any, limit: int, param: str) -> None:
    """400 naming ``param`` when ``value`` is a list of more than ``limit`` items."""
    if isinstance(value, list) and len(value) > limit:
        raise array_above_max_length(param, limit, len(value))


def prompt_count(prompt: Any) -> int:
    """The prompts of a completions request: a string or one token array is one prompt, a
    list of strings or of token arrays as many as it holds (the document's ``oneOf``
    keeps a list to one kind, so its first item tells)."""
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return len(prompt)
    return 1


def check_prompts(body: Any) -> None:
    """A completions request's prompts within ``MAX_PROMPTS``, counted before any is read."""
    if isinstance(body, dict) and (count := prompt_count(body.get("prompt"))) > MAX_PROMPTS:
        raise array_above_max_length("prompt", MAX_PROMPTS, count)


def check_lists(operation: str, body: Any) -> None:
    """Every list of ``operation``'s body within its bound (``LISTS``), and the items of its
    inner lists within ``MAX_PARTS`` in all, else OpenAI's 400 naming the list."""
    if not isinstance(body, dict):
        return
    total = [0]
    for path, limit in LISTS.get(operation, ()):
        _check_path(body, path, limit, "", total)


def _check_path(value: Any, path: tuple[str, ...], limit: int, shown: str, total: list[int]) -> None:
    if not path:
        check_count(value, limit, shown)
        if isinstance(value, list) and "[" in shown:  # an inner list: counted in the total
            total[0] += len(value)
            if total[0] > MAX_PARTS:
                raise bad_request(
                    f"Invalid '{shown}': too many items in all. A request's inner lists (content parts, tool "
                    f"calls) can hold at most {MAX_PARTS} items together, and this one brings them past it.",
                    shown,
                    "array_above_max_length",
                )
        return
    step, rest = path[0], path[1:]
    if step == "*":
        # The outer list passed its own bound first (LISTS names outer paths first).
        for index, item in enumerate(value if isinstance(value, list) else ()):
            _check_path(item, rest, limit, f"{shown}[{index}]", total)
    elif isinstance(value, dict) and step in value:
        _check_path(value[step], rest, limit, f"{shown}.{step}" if shown else step, total)
