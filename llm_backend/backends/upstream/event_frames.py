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

from typing import cast

from ...json.text import LARGE_BODY

EVENT_END = b"\n\n"
GATHERED = 1 << 16  # pieces shorter than this are gathered before they are kept
SLICE = 1 << 20  # of an event searched at once (``holds``)


class EventTooLong(Exception):
    """An event went on past the bound without ending."""


class EventFrames:
    """Fed an event stream's bytes as they come; hands back its whole events.

    An event may be as long as the limit (64 MiB), and every pass over it holds the GIL
    (``/health`` waited 0.2-0.6 s for a 40 MiB event before): so the pieces of an event under
    way are kept as they came (the small ones gathered) and joined once when it ends (a
    growing buffer copied its bytes again as it grew), and a piece that ends where its
    events do, with nothing held (what every reader after the relay is fed), is handed back
    as it is."""

    __slots__ = ("limit", "_parts", "_held")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # None: the relay bounded the events already
        self._parts: list[bytes | bytearray] = []  # the event under way, as it came
        self._held = 0  # their bytes

    def feed(self, chunk: bytes) -> bytes:
        """The events ``chunk`` completes, whole and with their blank lines (``b""``: none);
        ``EventTooLong`` once the event under way is longer than ``limit``."""
        parts, held = self._parts, self._held
        straddles = self._straddles(chunk)
        last = chunk.rfind(EVENT_END)  # from the end: at once where the chunk ends an event
        if last < 0 and not straddles:
            self._check(held + len(chunk))
            self._hold(chunk)
            return b""
        if self.limit is not None and held + len(chunk) > self.limit:
            # Only then can the first event be too long (the others lie within the chunk: a
            # network read, far shorter than any limit).
            self._check(held + (-1 if straddles else chunk.find(EVENT_END)))
        end = max(last + 2, 1)  # 1: only the straddling end
        rest = chunk[end:]
        self._check(len(rest))
        if parts or rest:
            parts.append(chunk[:end] if rest else chunk)
            chunk = b"".join(parts)
        self._parts, self._held = [], 0
        self._hold(rest)
        return chunk

    def joins_long(self, chunk: bytes) -> bool:
        """Whether ``feed(chunk)`` ends an event held in more than ``LARGE_BODY`` bytes: it
        joins them then, one copy that its caller makes beside the loop (``bytes.join`` lets
        the GIL go; 45 ms of the loop at 48 MiB)."""
        return self._held > LARGE_BODY and (self._straddles(chunk) or EVENT_END in chunk)

    def _straddles(self, chunk: bytes) -> bool:
        """Whether an event's end (a blank line) straddles two pieces: the held bytes end a
        line and ``chunk`` starts with a line end."""
        return bool(self._parts) and self._parts[-1].endswith(b"\n") and chunk.startswith(b"\n")

    def _hold(self, piece: bytes) -> None:
        """``piece`` kept; small pieces gathered into one (an upstream dripping single bytes
        would otherwise hold an object of about 40 bytes per byte)."""
        parts = self._parts
        if len(piece) >= GATHERED:
            parts.append(piece)
        elif piece:
            if not parts or len(parts[-1]) >= GATHERED or not isinstance(parts[-1], bytearray):
                parts.append(bytearray())
            cast(bytearray, parts[-1]).extend(piece)
        self._held += len(piece)

    def _check(self, length: int) -> None:
        if self.limit is not None and length > self.limit:
            raise EventTooLong(f"an event longer than {self.limit} bytes")

    def rest(self) -> bytes:
        """What came after the last event's end (a last event without its blank line)."""
        rest = b"".join(self._parts)
        self._parts, self._held = [], 0
        return rest


def holds(text: bytes, part: bytes, start: int = 0, end: int | None = None) -> bool:
    """``part`` in ``text[start:end]``, searched a slice at a time: a thread searching 64 MiB
    in one call would hold the GIL, and the loop, for all of it (50 ms at 48 MiB)."""
    end = len(text) if end is None else end
    return any(text.find(part, at, min(at + SLICE + len(part) - 1, end)) >= 0 for at in range(start, end, SLICE))


def split(events: bytes) -> list[bytes]:
    """``feed``'s events one by one, each with its blank line."""
    return [event + EVENT_END for event in events[:-2].split(EVENT_END)] if events else []
