"""What every Realtime session shares: event and item ids, and the refusals of a session's
configuration, each naming the parameter as OpenAI's ``error`` events do."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ...errors import OpenAIError, bad_request

Json = dict[str, Any]
Send = Callable[[Json], Awaitable[None]]


def event_id() -> str:
    return f"event_{uuid.uuid4().hex[:20]}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def unknown(param: str) -> OpenAIError:
    return bad_request(f"Unknown parameter: '{param}'.", param, "unknown_parameter")


def unsupported(param: str, why: str) -> OpenAIError:
    return bad_request(f"Unsupported value for '{param}': {why}.", param, "unsupported_value")


def only(value: Json, known: tuple[str, ...], prefix: str) -> None:
    """Refuse a field of ``value`` that is not ``known`` (honoured or refused, never ignored)."""
    for key in value:
        if key not in known:
            raise unknown(f"{prefix}.{key}")
