"""An upstream's event stream cut at its events' ends, each event read whole and within a
bound: what every reader of a relayed stream (the relay's model rename, the usage a client
did not ask for, the Messages meter, the tenant guard, a stored completion) frames it by.

Each of them once kept the bytes since the last event's end and searched all of them again
as each piece came: an upstream that sent one endless event (a ``data:`` line that never
ends) grew the process without bound, and searching it again each piece made its cost
quadratic. Here only the new bytes are searched, and an event longer than ``limit`` is
refused (``EventTooLong``): the relay ends the stream there with its API's error event
(``relay.py``), so every reader after it is handed events of at most ``limit`` bytes.
Lines end in ``\\n`` here (``relay.openai_line_ends`` made them so).
"""

from __future__ import annotations

EVENT_END = b"\n\n"


class EventTooLong(Exception):
    """An event went on past the bound without ending."""


class EventFrames:
    """Fed an event stream's bytes as they come; hands back its whole events."""

    __slots__ = ("limit", "_pending")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # None: the relay bounded the events already
        self._pending = bytearray()

    def feed(self, chunk: bytes) -> bytes:
        """The events ``chunk`` completes, whole and with their blank lines (``b""``: none);
        ``EventTooLong`` once the event under way is longer than ``limit``."""
        pending = self._pending
        start = max(len(pending) - 1, 0)  # the byte before the new ones may be an end's first "\n"
        pending += chunk
        first = pending.find(EVENT_END, start)
        if first < 0:
            self._check(len(pending))
            return b""
        self._check(first)  # the events after the first one are shorter than the chunk
        end = pending.rfind(EVENT_END, first)
        events = bytes(pending[: end + 2])
        del pending[: end + 2]
        self._check(len(pending))
        return events

    def _check(self, length: int) -> None:
        if self.limit is not None and length > self.limit:
            raise EventTooLong(f"an event longer than {self.limit} bytes")

    def rest(self) -> bytes:
        """What came after the last event's end (a last event without its blank line)."""
        rest = bytes(self._pending)
        self._pending.clear()
        return rest


def split(events: bytes) -> list[bytes]:
    """``feed``'s events one by one, each with its blank line."""
    return [event + EVENT_END for event in events[:-2].split(EVENT_END)] if events else []
