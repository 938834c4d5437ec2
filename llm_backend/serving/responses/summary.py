"""A conversation condensed by its own model into one ``compaction`` item, which later requests
carry in their ``input``: asked for by ``POST /v1/responses/compact`` (``compaction.py``), or by
a Response whose last input item is a ``compaction_trigger`` ("Compacts the current context.
Must be the final input item", the document says), which is how Codex compacts with OpenAI's
own provider (its ``remote_compaction_v2``: the trigger sent over its Responses WebSocket).

The item's ``encrypted_content`` here is the summary as plain text: there is nothing to hide
it from, it is the client's own conversation summarized by the client's chosen model.
"""

from __future__ import annotations

from typing import Any

from ...backends.base import Stream
from ...errors import bad_request
from ...json.types import Json
from .items import new_id
from .made import Event, answered

INSTRUCTIONS = (
    "You are compacting a conversation so that it can continue in fewer tokens. Write a short "
    "summary of the conversation below: the facts, names, numbers, decisions and open tasks "
    "someone needs to continue it. Write only the summary."
)
# The summary's length bound: short enough to save context on a 2048-token model.
SUMMARY_MAX_TOKENS = 128
TRIGGER = "compaction_trigger"


def _line(item: Json) -> str | None:
    kind = item.get("type", "message")
    if kind == "message":
        text = "".join(part.get("text") or part.get("refusal") or "" for part in item.get("content") or [])
        return f"{item['role'].capitalize()}: {text}"
    if kind == "function_call":
        return f"Assistant called {item['name']}({item.get('arguments') or ''})"
    if kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else "".join(part.get("text", "") for part in output or [])
        return f"Result of the call: {text}"
    if kind == "compaction":
        return f"Summary of what came before: {item['encrypted_content']}"
    return None


def transcript(items: list[Json]) -> str:
    return "\n".join(line for line in map(_line, items) if line)


async def summarized(backend: Any, model_id: str, conversation: list[Json]) -> tuple[Json, Json | None]:
    """The ``compaction`` item of ``conversation`` (its items as stored), and the chat usage
    of writing it."""
    chat: Json = {
        "model": model_id,
        "messages": [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": transcript(conversation)}],
        "temperature": 0,
        "max_tokens": SUMMARY_MAX_TOKENS,
    }
    answer = await backend.chat_completion_objects(model_id, chat)
    summary = answer["choices"][0]["message"].get("content") or ""
    return {"id": new_id("cmp"), "type": "compaction", "encrypted_content": summary}, answer.get("usage")


def triggered(body: Json) -> Json | None:
    """``body`` without its last input item when that is a ``compaction_trigger``, else None;
    a trigger anywhere else is OpenAI's 400 (``invalid_value`` naming it), and so is one in a
    background response (``background``: this answer is made at once)."""
    items = body.get("input")
    if not isinstance(items, list):
        return None
    found = [index for index, item in enumerate(items) if isinstance(item, dict) and item.get("type") == TRIGGER]
    if not found:
        return None
    if found[0] != len(items) - 1:
        where = f"input[{found[0]}]"
        raise bad_request(f"'{where}': a compaction_trigger must be the final input item.", where, "invalid_value")
    if body.get("background"):
        raise bad_request("'background' is not supported with a compaction_trigger.", "background", "unsupported_parameter")
    return {**body, "input": items[:-1]}


async def as_response(turn: Any, backend: Any, stream: bool, keepalive: float) -> Json | Stream[Event]:
    """The Response of a ``turn`` (``service.Turn``: its history and input, the trigger left
    out) whose one output item is their compaction (``made.answered``)."""

    async def output() -> tuple[list[Json], Json | None]:
        item, usage = await summarized(backend, turn.body["model"], [*turn.earlier, *turn.input_items])
        return [item], usage

    return await answered(turn, output, stream, keepalive)
