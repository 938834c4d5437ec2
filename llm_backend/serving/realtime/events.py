"""What every Realtime session shares: event and item ids, and the refusals of a session's
configuration, each naming the parameter as OpenAI's ``error`` events do."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from ...errors import OpenAIError, bad_request

Json = dict[str, Any]
Send = Callable[[Json], Awaitable[None]]


class Gate(Protocol):
    """What the edge does for each response a session gives (``http/realtime_socket.py``),
    as for every request: the key checked again (a revoked key stops working) and counted
    by the rate limits, the response observed by the metrics and the usage accounting, its
    access log line. ``respond`` yields the key's rate limits for ``rate_limits.updated``
    and takes the response's final status."""

    def respond(self, model: str) -> AbstractAsyncContextManager[tuple[list[Json], Callable[[int], None]]]: ...


def event_id() -> str:
    return f"event_{uuid.uuid4().hex[:20]}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def user_audio_item(item_id: str) -> Json:
    """The user item a spoken turn becomes."""
    return {"id": item_id, "type": "message", "object": "realtime.item", "status": "completed", "role": "user", "content": [{"type": "input_audio"}]}


def unknown(param: str) -> OpenAIError:
    return bad_request(f"Unknown parameter: '{param}'.", param, "unknown_parameter")


def unsupported(param: str, why: str) -> OpenAIError:
    return bad_request(f"Unsupported value for '{param}': {why}.", param, "unsupported_value")


def only(value: Json, known: tuple[str, ...], prefix: str) -> None:
    """Refuse a field of ``value`` that is not ``known`` (honoured or refused, never ignored)."""
    for key in value:
        if key not in known:
            raise unknown(f"{prefix}.{key}")
