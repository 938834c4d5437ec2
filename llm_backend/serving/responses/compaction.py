"""``POST /v1/responses/compact``: the local model condenses a conversation into one
``compaction`` item that later requests carry in their ``input``.

As at OpenAI, the output keeps the user's own messages and adds the compaction item; its
``encrypted_content`` here is the summary as plain text (there is nothing to hide it from:
it is the client's own conversation, summarized by the client's chosen model). Nothing is
stored: the compacted items are the client's to send back.
"""

from __future__ import annotations

import time

from ...json.types import Json
from ..services import Services
from . import objects, service
from .items import new_id, normalize


INSTRUCTIONS = (
    "You are compacting a conversation so that it can continue in fewer tokens. Write a short "
    "summary of the conversation below: the facts, names, numbers, decisions and open tasks "
    "someone needs to continue it. Write only the summary."
)
# The summary's length bound: short enough to save context on a 2048-token model.
SUMMARY_MAX_TOKENS = 128


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


async def compact(services: Services, owner: str, body: Json) -> Json:
    backend = service.checked_backend(services, body)
    history = await service.history(services, owner, body)
    conversation = [*history, *normalize(body.get("input"))]
    chat: Json = {
        "model": body["model"],
        "messages": [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": transcript(conversation)},
        ],
        "temperature": 0,
        "max_tokens": SUMMARY_MAX_TOKENS,
    }
    answer = await backend.chat_completion_objects(body["model"], chat)
    summary = answer["choices"][0]["message"].get("content") or ""
    kept = [item for item in conversation if item.get("type", "message") == "message" and item.get("role") == "user"]
    return {
        "id": new_id("resp"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, {"id": new_id("cmp"), "type": "compaction", "encrypted_content": summary}],
        "usage": objects.usage(answer.get("usage")),
    }
