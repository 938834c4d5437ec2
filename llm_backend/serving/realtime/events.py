"""What every Realtime session shares: event and item ids, the ``error`` event, the refusals
of a session's configuration (each naming the parameter, as OpenAI's ``error`` events do),
the memory a configuration or an item holds, and the ``Gate`` every request of a session
passes."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from ...errors import OpenAIError, bad_request
from ...errors import unknown_parameter as unknown
from ...json.types import Json

Send = Callable[[Json], Awaitable[None]]
# The operations a session's requests are counted as (metrics, usage, access log).
RESPONSE = "createRealtimeResponse"
TRANSCRIPTION = "createTranscription"


class Admission(Protocol):
    """One request of a session let through the ``Gate``: the key's rate limits when it was
    admitted (``rate_limits.updated``), and how it ended."""

    rate_limits: list[Json]

    def finished(self, status: int, usage: Json | None = None) -> None:
        """Its status (as an HTTP request's) and the tokens it used, if no engine counted them."""


class Gate(Protocol):
    """What the edge does for each request a session makes (``http/realtime_socket.py``) - a
    response, a turn's transcription -, as for every HTTP request: the key checked again (a
    revoked key ends the session), counted by the rate limits, its project's per-model
    limits on ``model`` and hosted tool permissions (the tools of ``body``, found at
    ``prefix``) applied, the request observed by the metrics and the usage accounting, its
    access log line. A refusal is raised on entry."""

    def admit(
        self, operation: str, model: str, body: Json | None = None, prefix: str = "", audio_bytes: int = 0
    ) -> AbstractAsyncContextManager[Admission]: ...


def event_id() -> str:
    return f"event_{uuid.uuid4().hex[:20]}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def error_event(error: OpenAIError, client_event_id: Any = None) -> Json:
    """``RealtimeServerEventError``: OpenAI's error body, with the client event's id."""
    body = error.body()["error"]
    body["event_id"] = client_event_id if isinstance(client_event_id, str) else None
    return {"type": "error", "event_id": event_id(), "error": body}


def snapshot(item: Json) -> Json:
    """An item as it is now: the events carry snapshots (the item goes on changing)."""
    return json.loads(json.dumps(item))


def user_audio_item(item_id: str) -> Json:
    """The user item a spoken turn becomes."""
    return {"id": item_id, "type": "message", "object": "realtime.item", "status": "completed", "role": "user", "content": [{"type": "input_audio"}]}


def only(value: Json, known: tuple[str, ...], prefix: str) -> None:
    """Refuse a field of ``value`` that is not ``known`` (honoured or refused, never ignored)."""
    for key in value:
        if key not in known:
            raise unknown(f"{prefix}.{key}")


def held_bytes(value: Any) -> int:
    """The memory ``value`` (parsed JSON) takes, as Python holds it: every string, number,
    list and dict counted, so an empty string or object is not free (a list of 100,000 of
    them holds megabytes). The values of one client event are bounded, so this is quick."""
    total, pending = 0, [value]
    while pending:
        current = pending.pop()
        total += sys.getsizeof(current)
        if isinstance(current, dict):
            pending.extend(current)
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
    return total


def checked_config_size(config: Any, limit: int, param: str) -> None:
    """Refuse a configuration (a session's, a response's) that would hold more than ``limit``."""
    size = held_bytes(config)
    if size > limit:
        raise bad_request(
            f"The '{param}' configuration (its instructions, tools and prompts) takes {size} bytes here; at most {limit} "
            "(realtime_config_bytes) are held for a session.",
            param,
            "session_config_too_large",
        )
