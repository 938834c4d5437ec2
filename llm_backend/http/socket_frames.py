"""A WebSocket client event read from its frame within bounds, and off the event loop when
it is large: parsing and checking are sized by the frame (up to ``max_body_bytes``), and an
8 MB frame of empty objects costs ``json.loads`` 1.7 s holding the GIL, the spec check of
its values more (issue #39).

A small frame (``INLINE_BYTES``) is parsed and checked at once: its cost is bounded by its
size. A larger one goes to a worker thread. Either way it is read by ``json_text.loads``, as
every lane's JSON is: its depth and values scanned before anything is built (a slice at a
time, the GIL let go between slices: ``json/scan.py``) and refused deeper than
``MAX_JSON_DEPTH`` or past ``max_values``; then parsed and checked by the spec, all of it
bounded by those values.
Either way the refusal carries the client's ``event_id`` when it could be read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors
from ..errors import OpenAIError
from ..json.text import loads

INLINE_BYTES = 4096
Check = Callable[[Any], dict]
Run = Callable[..., Awaitable[Any]]  # runs a function beside the loop


class RefusedEvent(Exception):
    """A client event that cannot be taken: its error, and the client's ``event_id``."""

    def __init__(self, error: OpenAIError, client_event_id: Any = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.client_event_id = client_event_id


async def read_event(frame: str | bytes, check: Check, max_values: int, run: Run) -> dict:
    """The client event in ``frame``, checked by ``check``; ``RefusedEvent`` if it is not one."""
    if len(frame) <= INLINE_BYTES:
        return _read(frame, check, max_values)
    return await run(_read, frame, check, max_values)


def _read(frame: str | bytes, check: Check, max_values: int) -> dict:
    try:
        event = _parsed(frame, max_values)
    except OpenAIError as error:
        raise RefusedEvent(error) from None
    client_id = event.get("event_id") if isinstance(event, dict) else None
    try:
        return check(event)
    except OpenAIError as error:
        raise RefusedEvent(error, client_id) from None


def _parsed(frame: str | bytes, max_values: int) -> Any:
    try:
        text = frame.decode() if isinstance(frame, bytes) else frame  # UTF-8 only, as a text frame
        if text.startswith("\ufeff"):
            raise ValueError("a byte-order mark")  # json.loads refuses it in text; bytes would pass it
        return loads(text.encode(), max_values, past_values=errors.event_too_large)
    except ValueError:  # not UTF-8, not JSON
        raise errors.invalid_client_event() from None

