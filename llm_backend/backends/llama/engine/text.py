"""Generated tokens to text a client may see: whole UTF-8 characters, stop strings held back.

A token can end in the middle of a multi-byte character, and a stop string can span several
tokens. ``TextStream`` releases text only once it can no longer turn into either: bytes wait
for the rest of their character, and a tail that could still grow into a stop string waits
for the next token.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass
class Released:
    text: str
    stopped: bool  # a stop string was found; the text before it is all that remains


class TextStream:
    def __init__(self, stop: list[str]) -> None:
        self.stop = [s for s in stop if s]
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""

    def push(self, piece: bytes) -> Released:
        """Add one token's bytes; return what can be shown now."""
        text = self._held + self._decoder.decode(piece)
        if not self.stop:
            self._held = ""
            return Released(text, False)
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return Released(text[:cut], True)
        keep = self._partial_stop_length(text)
        self._held = text[len(text) - keep :] if keep else ""
        return Released(text[: len(text) - keep], False)

    def flush(self) -> str:
        """At the end of generation: held text was no stop string after all. Bytes of an
        unfinished character are dropped rather than shown as broken text."""
        text, self._held = self._held, ""
        self._decoder.reset()
        return text

    def _partial_stop_length(self, text: str) -> int:
        # The longest end of ``text`` that is the beginning of some stop string.
        best = 0
        for stop in self.stop:
            for length in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:length]):
                    best = length
                    break
        return best
