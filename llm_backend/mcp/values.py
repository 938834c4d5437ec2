"""The JSON values in an MCP server's answer, counted as its bytes arrive, without parsing
them: every string, and every ``,``, ``[`` and ``{`` outside the strings (at least one per
value or key beyond the first of each array or object), as ``http/socket_frames.py`` counts
a Realtime client's event.

A JSON string never holds a raw line break, so one ends any string that was open: a stray
quote in an SSE field line (``id: "``) cannot make the data line after it look like the
inside of a string, whose commas nobody would count. The strings are skipped by the ``re``
module's C scanner, so the count takes a few milliseconds for 4 MB of text.
"""

from __future__ import annotations

import re
from typing import cast

# Outside a string: where the next string or line begins.
_OUTSIDE = re.compile(rb'["\r\n]')
# Inside one: its characters and escapes, up to where it ends (a quote, a line break) or
# to a backslash the chunk ends on.
_INSIDE = re.compile(rb'(?:[^"\\\r\n]++|\\[^\r\n])*+')


class ValueCount:
    """One answer's bytes, chunk after chunk: whether the last chunk ended in a string."""

    def __init__(self) -> None:
        self.in_string = False
        self.escaped = False  # the last chunk ended on a backslash inside a string

    def feed(self, chunk: bytes, limit: int) -> int:
        """The values that begin in ``chunk``, counted until they pass ``limit``."""
        values = position = 0
        end = len(chunk)
        while position < end and values <= limit:
            if self.in_string:
                if self.escaped:  # the escaped byte: a line break still ends the string
                    self.escaped = False
                    self.in_string = chunk[position] not in b"\r\n"
                    position += 1
                    continue
                # The pattern matches the empty string: a match is there by construction.
                position = cast(re.Match[bytes], _INSIDE.match(chunk, position)).end()
                if position == end:
                    return values
                if chunk[position] == 0x5C and position + 1 == end:  # its escaped byte comes next
                    self.escaped = True
                else:  # a quote, or a line break no string may hold (escaped or not)
                    self.in_string = False
                position += 1
            else:
                found = _OUTSIDE.search(chunk, position)
                stop = end if found is None else found.start()
                values += chunk.count(b",", position, stop) + chunk.count(b"[", position, stop) + chunk.count(b"{", position, stop)
                if found is None:
                    return values
                position = found.end()
                if chunk[found.start()] == 0x22:
                    self.in_string = True
                    values += 1
        return values
