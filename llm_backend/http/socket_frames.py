"""A WebSocket client event read from its frame within bounds, and off the event loop when
it is large: parsing and checking are sized by the frame (up to ``max_body_bytes``), and an
8 MB frame of empty objects costs ``json.loads`` 1.7 s holding the GIL, the spec check of
its values more (issue #39).

A small frame (``INLINE_BYTES``) is parsed and checked at once: its cost is bounded by its
size. A larger one goes to a worker thread, where its values are counted first (``_values``:
``json.loads`` and ijson's C parser both hold the GIL, and so the loop, for the whole
frame) and it is refused past ``max_values``; then parsed, refused deeper than
``json_depth.MAX_JSON_DEPTH``, and checked by the spec, all of it bounded by those values.
Either way the refusal carries the client's ``event_id`` when it could be read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from .. import errors
from ..errors import OpenAIError
from ..json_depth import MAX_JSON_DEPTH, too_deep
from ..json_text import separators_outside_strings

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
        if too_deep(event):
            raise errors.too_deep(MAX_JSON_DEPTH)
        return check(event)
    except OpenAIError as error:
        raise RefusedEvent(error, client_id) from None


def _parsed(frame: str | bytes, max_values: int) -> Any:
    try:
        text = frame.decode() if isinstance(frame, bytes) else frame
        if len(text) > INLINE_BYTES and _values(text, max_values) > max_values:
            raise errors.bad_request(
                f"A client event may hold at most {max_values} JSON values and keys (realtime_event_values).", None, "event_too_large"
            )
        return json.loads(text)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past Python's own limit
        raise errors.invalid_client_event() from None


def _values(text: str, limit: int) -> int:
    """At least the number of values and keys ``text`` holds, counted up to past ``limit``
    (``json_text.separators_outside_strings``); ``json.loads`` then parses a bounded event."""
    if 2 * (text.count(",") + text.count("[") + text.count("{")) + 1 <= limit:
        return 0  # too few separators to pass the limit (an audio frame: one string)
    return separators_outside_strings(text, limit)
