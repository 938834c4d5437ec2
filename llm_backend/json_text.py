"""JSON text read within a request's budgets, with the work a large one costs kept off the
event loop (issue #39): every lane's JSON (HTTP bodies through ``http/body.parse_json``,
WebSocket events, batch lines and their answers) is read here.

The event loop does no work sized by the input: a body up to ``LARGE_BODY``
is parsed and checked on the loop (the worst 256 KiB, 131 000 zeros, parses in 5 ms), a
larger one in a thread (``off_loop.py``). A thread alone is not enough: ``json.loads`` is
one C call holding the GIL, 0.25 s for the worst 8 MiB body (2.79 million empty objects,
measured), during which the loop could not answer even ``/health``. So a large body of
many values (``MANY_VALUES`` commas: the parse's cost is its values', a few long strings
cost little) is parsed in 64 KiB slices by ijson's C backend, and the thread gives the GIL
back between slices; what ijson reads otherwise than ``json.loads`` (an escaped surrogate,
which it turns into ``?``; NaN, numbers past 64 bits, a byte-order mark, which it refuses)
is parsed by the standard library's own pure-Python scanner, the reference its C one
mirrors, also a value at a time: a body means the same at any size.

Memory follows what a body expands to, not its bytes: 8 MiB of ``[0],`` is 2.8 million
Python objects (a completions prompt of them grew the API process by 421 MiB on its way to
a 400). So a body that may hold more than ``max_body_values`` values and keys (its
separators tell: at most two values each) is counted before anything is built
(``counted``), and refused past the budget (400 ``invalid_body``): 1,000,000 by default,
three times the largest request OpenAI takes (an embeddings request's 300,000 token ids).
"""

from __future__ import annotations

import functools
import json
import re
from json import scanner
from json.decoder import scanstring
from typing import Any

import ijson

from . import errors

LARGE_BODY = 256 * 1024
MANY_VALUES = 100_000
SLICE = 64 * 1024
MAX_VALUES = 1_000_000
"""``max_body_values``'s default: the JSON values and keys a body may hold (see ``counted``)."""


def loads(data: bytes, max_values: int | None = None) -> Any:
    """``json.loads``, a large body of many values a slice at a time (see the module's
    docstring): its ``ValueError`` or ``RecursionError`` for what does not parse, and
    ``errors.too_many_values`` past ``max_values`` values and keys, counted before
    anything is built."""
    separators = data.count(b",") + data.count(b"[") + data.count(b"{")
    # Values and keys are at most 2 x separators + 1 (each a container's first, or after a
    # comma, or an object's value after its key): only a body that may pass is counted.
    if max_values is not None and 2 * separators + 1 > max_values and counted(data, max_values) > max_values:
        raise errors.too_many_values(max_values)
    if len(data) > LARGE_BODY and separators > MANY_VALUES:
        return _sliced(data)
    return json.loads(data)


def counted(data: bytes, limit: int) -> int:
    """The values and keys of a JSON text (strings, numbers, literals, arrays, objects; an
    object's keys), counted up to past ``limit`` without building any: what its Python
    objects will weigh (an 8 MiB body of ``[0]`` items is 2.8 million of them, 230 MB as
    Python holds them, and more again for the work that walks them). Counted by ijson's C
    parser a slice at a time (its events, none kept: ~0.15 s for 8 MiB, letting go of the
    GIL between slices), or for a text it does not read (NaN, numbers past 64 bits, other
    encodings) its separators outside strings, at least as many."""
    if json.detect_encoding(data) == "utf-8":
        events = ijson.sendable_list()
        counter = ijson.basic_parse_coro(events, use_float=True)
        values = 0
        try:
            for start in range(0, len(data), SLICE):
                counter.send(data[start : start + SLICE])
                values += len(events) - events.count(_END_ARRAY) - events.count(_END_MAP)
                del events[:]
                if values > limit:
                    return values
            counter.close()
            return values + len(events) - events.count(_END_ARRAY) - events.count(_END_MAP)
        except (ijson.JSONError, ValueError, IndexError):
            pass
    try:
        return separators_outside_strings(data.decode(json.detect_encoding(data), "surrogatepass"), limit)
    except (UnicodeDecodeError, ValueError):
        return 0  # not JSON: the parse refuses it


_END_ARRAY, _END_MAP = ("end_array", None), ("end_map", None)


def separators_outside_strings(text: str, limit: int) -> int:
    """At least the values and keys ``text`` holds: 1 + its ``,[{:`` outside strings (each
    value or key is the text's first or follows one), counted up to past ``limit``, each
    string skipped by the json module's own scanner (C: an 8 MB string in ~20 ms, escapes
    and all; between two strings the GIL may go to the loop's thread)."""
    values, position = 1, 0
    while True:
        quote = text.find('"', position)
        end = len(text) if quote < 0 else quote
        values += sum(text.count(mark, position, end) for mark in ",[{:")
        if quote < 0 or values > limit:
            return values
        _, position = scanstring(text, quote + 1)


# What ijson's C backend reads otherwise than json.loads: an escaped surrogate (a lone one
# becomes "?"); a byte-order mark or another encoding than UTF-8 (see _sliced for the rest).
_IJSON_DIFFERS = re.compile(rb"\\u[dD][89a-fA-F]")


def _sliced(body: bytes) -> Any:
    if json.detect_encoding(body) == "utf-8" and not _IJSON_DIFFERS.search(body):
        built = ijson.sendable_list()
        parser = ijson.items_coro(built, "", use_float=True)
        try:
            for start in range(0, len(body), SLICE):
                parser.send(body[start : start + SLICE])
            parser.close()
            return built[0]
        except (ijson.JSONError, ValueError, IndexError):
            pass  # NaN, a number past 64 bits, ... or malformed: json.loads's verdict, below
    return _reference_decoder().decode(body.decode(json.detect_encoding(body), "surrogatepass"))


@functools.cache
def _reference_decoder() -> json.JSONDecoder:
    """``json.loads`` as the standard library's pure-Python scanner runs it: the same
    values and errors, a value at a time (the thread running it lets the loop in)."""
    decoder = json.JSONDecoder()
    decoder.scan_once = scanner.py_make_scanner(decoder)
    return decoder
