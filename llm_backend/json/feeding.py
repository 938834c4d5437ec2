"""An ijson event parser fed so that a long token costs its bytes once, not once a piece.

ijson's C backend keeps what a piece leaves of an unfinished token and lexes it again from
its start with each piece that follows, so a token cut into n pieces costs n times its
length: a 16 MiB string sent in 64 KiB pieces took 0.74 CPU-s (4 MiB pieces: 0.03), and a
forwarded request holding a 20 MiB image data URL 1.03 CPU-s of the event loop as its
chunks came. So a piece after which the parser gave no event (a token under way) makes the
next one at least twice as long, what comes held until then: a token of L bytes is lexed
about 2L bytes' worth in all. A piece that gives events resets it, so a text of many values
still goes a network chunk (or a ``SLICE``) at a time, the loop or the GIL free between.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ijson

from .scan import SLICE


class Fed:
    """``parser`` (an ijson coroutine whose events go to ``events``) fed as above; ``send``
    and ``close`` where the parser's own would be called."""

    __slots__ = ("events", "held", "parser", "size", "wanted")

    def __init__(self, parser: Any, events: list) -> None:
        self.parser, self.events = parser, events
        self.held: list[bytes] = []  # what came since the last piece sent
        self.size = 0  # their bytes
        self.wanted = 0  # the next piece's least size: twice the last one's, after it gave no event

    def send(self, chunk: bytes) -> None:
        if not chunk:
            return  # to ijson, an empty piece is the text's end
        self.held.append(chunk)
        self.size += len(chunk)
        if self.size < self.wanted:
            return
        piece = self.held[0] if len(self.held) == 1 else b"".join(self.held)
        self.held, self.size = [], 0
        before = len(self.events)
        self.parser.send(piece)
        self.wanted = 0 if len(self.events) > before else 2 * len(piece)

    def close(self) -> None:
        if self.held:
            self.parser.send(b"".join(self.held))
            self.held, self.size = [], 0
        self.parser.close()

    def sent(self, text: bytes) -> Iterator[None]:
        """``text`` sent a slice at a time (``SLICE``, or the size wanted), the caller
        reading the events after each."""
        start = 0
        while start < len(text):
            end = start + max(SLICE, self.wanted)
            self.send(text[start:end])
            start = end
            yield


def basic_events(text: bytes, **options: Any) -> Iterator[tuple[str, Any]]:
    """``ijson.basic_parse(text, **options)``'s events, ``text`` fed as ``Fed`` feeds it."""
    events = ijson.sendable_list()
    fed = Fed(ijson.basic_parse_coro(events, **options), events)
    for _ in fed.sent(text):
        yield from events
        del events[:]
    fed.close()
    yield from events
