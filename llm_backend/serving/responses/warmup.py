"""``generate: false`` in the Responses WebSocket mode (``spec/client_events.py``): a response
that "prepares request state without model output; the response ID can be used as
previous_response_id on a later turn" (OpenAI's SDKs). Codex sends one as a session starts,
its instructions and tools (8-9k tokens) in it, so its first turn finds them prepared.

Here the request's prompt is computed into the engine's prefix cache as the turn would ask it
(one token sampled past it, and dropped), and the response is ``completed`` with no output,
its usage the prompt's alone, kept as any response is: the later turn that continues it reads
its input from the cache instead of computing it again.
"""

from __future__ import annotations

from typing import Any

from ...backends.base import Stream
from ...json.types import Json
from .made import Event, answered

# The chat request's fields a warm-up does not keep: it samples one token, unstreamed.
_DROPPED = ("max_completion_tokens", "stream_options")


async def warmed(turn: Any, backend: Any, chat: Json, stream: bool, keepalive: float) -> Json | Stream[Event]:
    """``turn``'s response (``service.Turn``) with ``chat``, its chat request, prepared: no
    output items (``made.answered``)."""

    async def output() -> tuple[list[Json], Json | None]:
        prefill = {**{key: value for key, value in chat.items() if key not in _DROPPED}, "max_tokens": 1, "stream": False}
        answer = await backend.chat_completion_objects(turn.body["model"], prefill)
        prompt = answer.get("usage") or {"prompt_tokens": 0}
        return [], {"prompt_tokens": prompt["prompt_tokens"], "prompt_tokens_details": prompt.get("prompt_tokens_details"), "completion_tokens": 0}

    return await answered(turn, output, stream, keepalive)
