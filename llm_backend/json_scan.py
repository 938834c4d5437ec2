"""The one bounded scanner every lane's JSON goes through before any parser keeps state
(issue #47): how deep it nests and how many values and keys it holds, counted over its raw
bytes in O(its bytes) time and O(1) memory, so a text past a bound is refused before a
single object is built.

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
from typing import NamedTuple

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


def scan(data: bytes, max_depth: int | None = None, max_values: int | None = None) -> Shape:
    """The ``Shape`` of JSON text ``data`` (bytes as ``json.loads`` takes them), scanned up
    to the first slice that passes ``max_depth`` or ``max_values`` (its counts then: past
    the bound, not the whole text's). Exact without bounds; within ``max_depth``, its depth
    is only known to be within it (a slice is followed bracket by bracket only where it
    could pass)."""
    encoding = json.detect_encoding(data)
    if encoding not in ("utf-8", "utf-8-sig"):
        try:  # json.loads decodes it whole first; so does its scan, as UTF-8
            data = data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
        except UnicodeError:
            return Shape(0, 0)  # not text: json.loads refuses it before it parses anything
    values = depth = top = 0
    previous = b""  # the last byte counted: a container the slice boundary cuts open
    position, size = 0, len(data)
    while position < size:
        end = min(position + SLICE, size)
        outside = _STRING.sub(b"0", data[position:end])  # each whole string: one value
        cut = outside.find(b'"')  # a string the slice's end cuts: the rest is its inside
        if cut >= 0:
            start = end - (len(outside) - cut)
            outside = outside[:cut] + b"0"
            end = _string_end(data, start + 1)
        outside = outside.translate(None, _WHITESPACE)
        opens = outside.count(b"[") + outside.count(b"{")
        closes = outside.count(b"]") + outside.count(b"}")
        paired = previous + outside[:1]
        values += (opens + outside.count(b",") + outside.count(b":")
                   - outside.count(b"[]") - outside.count(b"{}") - (paired in (b"[]", b"{}")))
        if max_depth is None or depth + opens > max_depth:  # it may pass: followed bracket by bracket
            top = max(top, _deepest(outside.translate(_STEPS, _NOT_BRACKETS), depth, max_depth))
        else:  # it cannot: at most this deep
            top = max(top, depth + opens)
        depth += opens - closes
        previous = outside[-1:] or previous
        position = end
        if (max_depth is not None and top > max_depth) or (max_values is not None and values + 1 > max_values):
            break
    return Shape(values + 1 if size else 0, top)


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


def _string_end(data: bytes, inside: int) -> int:
    """Where the string whose inside begins at ``inside`` ends (after its end quote; or the
    text's end), followed a slice at a time."""
    size = len(data)
    while inside < size:
        stop = min(inside + SLICE, size)
        reached = _STRING_REST.match(data, inside, stop).end()
        if reached < stop and data[reached] == ord('"'):
            return reached + 1
        # The slice ended inside it, or on a backslash whose escaped byte is in the next.
        inside = reached if reached > inside else stop
    return size
