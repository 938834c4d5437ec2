"""Generated tokens to text a client may see: whole UTF-8 characters, stop strings held back.

A token can end in the middle of a multi-byte character, and a stop string can span several
tokens. ``TextStream`` releases text only once it can no longer turn into either: bytes wait
for the rest of their character, and a tail that could still grow into a stop string waits
for the next token.

The stop strings are one Aho-Corasick automaton (``ahocorasick_rs``, as the special texts
are: ``special_texts.py``) and one sorted list, so a token costs the text it looks at (the
held tail and the token's own), never the number of stop strings (issue #56: a Messages
request's 200 000 ``stop_sequences`` were each looked for at every token on the engine's
thread, and every tenant of the model waited). A token of ordinary text, measured on 2
shared cores over three runs: with 4 stop strings 4.9-10.9 us before, 256: 0.21-0.57 ms,
2000: 1.6-3.1 ms, 200 000: 166-253 ms; now 1.5-3.0 us with any of them. Building costs once
per distinct list (19 us for 4 strings, 0.5 ms for 256, 177 ms for 200 000: the lanes bound
the lists, docs/MESSAGES.md "Bounds"), and a list is kept built (``_stops``: a request's
``n`` choices, and every request with only the template's own stops, share one).
"""

from __future__ import annotations

import bisect
import codecs
import functools
from dataclasses import dataclass

from ahocorasick_rs import AhoCorasick, MatchKind

# Stop lists kept built for reuse: the template's stops (most requests'), and a few besides;
# each the size of its strings (the lanes bound those: docs/MESSAGES.md, "Bounds").
KEPT_STOP_LISTS = 16


@dataclass
class Released:
    text: str
    stopped: bool  # a stop string was found; the text before it is all that remains


class _Stops:
    """A request's stop strings, searched together: the automaton finds the earliest whole
    one (leftmost: the match that begins first), the sorted list says whether a tail is the
    beginning of one (the strings that begin with it follow it in sorted order)."""

    def __init__(self, stop: tuple[str, ...]) -> None:
        self.automaton = AhoCorasick(list(stop), matchkind=MatchKind.LeftmostLongest)
        self.sorted = sorted(stop)
        self.longest = max(map(len, stop))
        self.firsts = frozenset(string[0] for string in stop)

    def first_start(self, text: str) -> int:
        """Where the earliest stop string in ``text`` begins; -1: none is there."""
        found = self.automaton.find_matches_as_indexes(text)
        return found[0][1] if found else -1

    def partial_length(self, text: str) -> int:
        """The longest end of ``text`` that is the beginning of some stop string (``text``
        holds none whole)."""
        for index in range(max(len(text) - self.longest + 1, 0), len(text)):
            if text[index] in self.firsts:
                tail = text[index:]
                after = bisect.bisect_left(self.sorted, tail)
                if after < len(self.sorted) and self.sorted[after].startswith(tail):
                    return len(text) - index
        return 0


@functools.lru_cache(maxsize=KEPT_STOP_LISTS)
def _stops(stop: tuple[str, ...]) -> _Stops:
    return _Stops(stop)


class TextStream:
    def __init__(self, stop: list[str]) -> None:
        self.stop = [s for s in stop if s]
        self._stops = _stops(tuple(dict.fromkeys(self.stop))) if self.stop else None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""

    def push(self, piece: bytes) -> Released:
        """Add one token's bytes; return what can be shown now."""
        text = self._held + self._decoder.decode(piece)
        if self._stops is None:
            self._held = ""
            return Released(text, False)
        cut = self._stops.first_start(text)
        if cut >= 0:
            self._held = ""
            return Released(text[:cut], True)
        keep = self._stops.partial_length(text)
        self._held = text[len(text) - keep :] if keep else ""
        return Released(text[: len(text) - keep], False)

    def flush(self) -> str:
        """At the end of generation: held text was no stop string after all. Bytes of an
        unfinished character are dropped rather than shown as broken text."""
        text, self._held = self._held, ""
        self._decoder.reset()
        return text
