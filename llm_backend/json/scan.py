"""The one bounded scanner every lane's JSON goes through before any parser keeps state
(issue #47): how deep it nests and how many values and keys it holds, counted over its raw
bytes in O(its bytes) time and O(1) memory, so a text past a bound is refused before a
single object is built. ``scan`` takes a whole text (``json_text.loads``: HTTP bodies, the
fast lane, both WebSocket protocols, batch lines and answers), ``Scanner`` one that streams
in (the gateway guard's reading of a forwarded body, ``serving/request_ids.py``).

Why before: a parser's state follows a text's shape, not its bytes. 400 KB of 200,000
``[`` then 200,000 ``]`` cost ijson's ``items`` (which names each event's path,
``item.item.…``: quadratic) 18.7 GB; ``json.loads`` stops near 1000 levels, but recursive
code after it (validation, templates, storing) could still run out of stack just under
that (issue #33); and 8 MiB of ``[0],`` is 2.8 million Python objects (issue #39). 64
levels hold any request OpenAI's document describes, a tool's JSON schema included.

How: a slice at a time (``SLICE``; a thread scanning a large text gives the GIL back
between slices), every string of the slice is replaced by one byte by the ``re`` module's
C scanner (a string the slice cuts is followed to its end quote on its own), then what is
left outside strings is counted by C calls: ``,:[{`` each begin a value or key (less the
empty ``[]`` and ``{}``), and the running depth of ``[{``/``]}`` (``accumulate``) only in
a slice that could pass the bound. Its memory is a slice's (its copies, the pieces
``re.sub`` joins: at most ~3 MB), whatever the text. Measured on the shared 2-core machine,
8 MiB: 0.2-0.4 s for ``[0],`` items, ``{}`` items or short strings, 0.05 s for one long
string; 2 M levels (4 MB) refused in its first slice, ~5 ms.

Why not ijson's ``basic_parse`` (its events carry no path): it tracks depth in O(depth)
memory too (2 M levels: 0.53 s, +3 MB), but it refuses what ``json.loads`` reads (NaN,
numbers past 64 bits, UTF-16), which would then need a second rule of its own.

The count is exact for any text ``json.loads`` reads (NaN, numbers past 64 bits, UTF-16
and -32 included: another encoding than UTF-8 is scanned as UTF-8), and for one it
refuses it counts at least what the parser would build before its error. The scanner
itself never refuses a malformed text: the parser does, in its own words.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import NamedTuple, cast

MAX_JSON_DEPTH = 64
SLICE = 64 * 1024

# A whole string; the rest of one from inside it, up to its end quote (not included). No
# string begins after a backslash: in a string a slice cuts, each of its escaped quotes
# would be tried as the start of one, each try to the slice's end (quadratic: 8 MB of \"
# took 8 s); in valid JSON an opening quote follows a bracket, a separator or a space.
_STRING = re.compile(rb'(?<!\\)"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_WHITESPACE = b" \t\r\n"
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1, +1, -1, -1 once signed
_SIGNED = tuple(range(128)) + tuple(range(-128, 0))


class Shape(NamedTuple):
    values: int  # values and keys (strings, numbers, literals, arrays, objects; object keys)
    depth: int  # arrays and objects open at once, at most (within a bound: at most that)


def scan(data: bytes, max_depth: int | None = None, max_values: int | None = None, cuts: list[int] | None = None) -> Shape:
    """The ``Shape`` of JSON text ``data`` (bytes as ``json.loads`` takes them), scanned up
    to the first slice that passes ``max_depth`` or ``max_values`` (its counts then: past
    the bound, not the whole text's). Exact without bounds; within ``max_depth``, its depth
    is only known to be within it (a slice is followed bracket by bracket only where it
    could pass). ``cuts``: filled with where the text may be cut outside its strings, about a
    slice apart (``Scanner.cuts``), for a UTF-8 text."""
    encoding = json.detect_encoding(data)
    if encoding not in ("utf-8", "utf-8-sig"):
        try:  # json.loads decodes it whole first; so does its scan, as UTF-8
            data = data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
        except UnicodeError:
            return Shape(0, 0)  # not text: json.loads refuses it before it parses anything
        cuts = None  # its places are the UTF-8 copy's
    scanner = Scanner(max_depth, max_values, cuts)
    scanner.feed(data)
    return scanner.shape()


class Scanner:
    """``scan`` for a UTF-8 text that arrives in chunks (a forwarded body's stream): fed
    chunk after chunk, its ``shape()`` so far; it stops counting once past a bound."""

    def __init__(self, max_depth: int | None = None, max_values: int | None = None, cuts: list[int] | None = None) -> None:
        self.max_depth, self.max_values = max_depth, max_values
        # Where a slice ended outside a string (a place in the text one ``feed`` was given),
        # if asked: a parser fed pieces cut there never holds a string unfinished (ijson
        # lexes one again with each piece: ``feeding.py``).
        self.cuts = cuts
        self.values = self.depth = self.top = 0
        self.seen = False  # any byte at all: the text's first value counts
        self.previous = b""  # the last byte counted: a container a chunk's or slice's end cuts open
        self.in_string = False  # the last chunk ended inside a string
        self.carry = b""  # a backslash the last chunk ended on inside a string: its escape is next

    def shape(self) -> Shape:
        return Shape(self.values + 1 if self.seen else 0, self.top)

    def past(self) -> bool:
        return (self.max_depth is not None and self.top > self.max_depth) or (
            self.max_values is not None and self.values + 1 > self.max_values
        )

    def feed(self, chunk: bytes) -> None:
        data, self.carry = self.carry + chunk, b""
        self.seen = self.seen or bool(data)
        position, size = 0, len(data)
        while position < size and not self.past():
            if self.in_string:
                position = self._string_rest(data, position)
                continue
            end = min(position + SLICE, size)
            outside = _STRING.sub(b"0", data[position:end])  # each whole string: one value
            cut = outside.find(b'"')  # a string the slice's end cuts: the rest is its inside
            if cut >= 0:
                end = end - (len(outside) - cut) + 1
                outside = outside[:cut] + b"0"
                self.in_string = True
            self._count(outside.translate(None, _WHITESPACE))
            position = end
            if self.cuts is not None and not self.in_string:
                self.cuts.append(position)

    def _count(self, outside: bytes) -> None:
        """What lies outside strings in a slice (each string one byte, no whitespace)."""
        opens = outside.count(b"[") + outside.count(b"{")
        closes = outside.count(b"]") + outside.count(b"}")
        paired = self.previous + outside[:1]
        self.values += (opens + outside.count(b",") + outside.count(b":")
                        - outside.count(b"[]") - outside.count(b"{}") - (paired in (b"[]", b"{}")))
        if self.max_depth is None or self.depth + opens > self.max_depth:  # it may pass: followed bracket by bracket
            self.top = max(self.top, _deepest(outside.translate(_STEPS, _NOT_BRACKETS), self.depth, self.max_depth))
        else:  # it cannot: at most this deep
            self.top = max(self.top, self.depth + opens)
        self.depth += opens - closes
        self.previous = outside[-1:] or self.previous

    def _string_rest(self, data: bytes, inside: int) -> int:
        """Past the end quote of the string whose inside goes on at ``inside``, a slice at
        a time; or the end of ``data``, still inside it."""
        size = len(data)
        stop = min(inside + SLICE, size)
        # The pattern matches the empty string: a match is there by construction.
        reached = cast(re.Match[bytes], _STRING_REST.match(data, inside, stop)).end()
        if reached < stop and data[reached] == ord('"'):
            self.in_string = False
            return reached + 1
        if reached < stop and stop == size:  # a backslash the chunk ends on: its escape is next
            self.carry = data[reached:]
            return size
        return reached if reached > inside else stop  # the slice ended inside it (or before an escape it cuts)


def _deepest(steps: bytes, depth: int, max_depth: int | None) -> int:
    """The deepest of ``depth`` and the running sums of ``steps`` (+1, -1 bytes). Within a
    bound, first without the innermost pairs (``[0]``, ``{}``: most of a wide text's
    brackets), whose top is at most one deeper than what remains; exactly when that may
    pass the bound."""
    if max_depth is not None:
        within = max(accumulate(map(_SIGNED.__getitem__, steps.replace(b"\x01\xff", b"")), initial=depth)) + 1
        if within <= max_depth:
            return within
    return max(accumulate(map(_SIGNED.__getitem__, steps), initial=depth))
