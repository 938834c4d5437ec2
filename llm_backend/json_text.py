"""JSON text read within a request's budgets, with the work a large one costs kept off the
event loop (issue #39): every lane's JSON (HTTP bodies through ``http/body.parse_json``,
WebSocket events, batch lines and their answers) is read here.

The event loop does no work sized by the input: a body up to ``LARGE_BODY``
is parsed and checked on the loop (the worst 256 KiB, 131 000 zeros, parses in 5 ms), a
larger one in a thread (``off_loop.py``). A thread alone is not enough: ``json.loads`` is
one C call holding the GIL, 0.25 s for the worst 8 MiB body (2.79 million empty objects,
measured), during which the loop could not answer even ``/health``. So a large body of
many values (``MANY_VALUES``: the parse's cost is its values', a few long strings cost
little) is parsed in 64 KiB slices by ijson's C backend, and the thread gives the GIL
back between slices; what ijson reads otherwise than ``json.loads`` (an escaped surrogate,
which it turns into ``?``; NaN, numbers past 64 bits, a byte-order mark, which it refuses)
is parsed by the standard library's own pure-Python scanner, the reference its C one
mirrors, also a value at a time: a body means the same at any size.

Memory follows what a body expands to, not its bytes: 8 MiB of ``[0],`` is 2.8 million
Python objects (a completions prompt of them grew the API process by 421 MiB on its way to
a 400), and a parser's state follows its depth (ijson's ``items`` names each event's
path: 20,000 levels cost it 0.96 GB, 200,000 levels 18.7 GB, issue #47). So every text
is scanned first (``json_scan.py``: O(its bytes) time, O(1) memory, in slices), and one
deeper than ``MAX_JSON_DEPTH`` or of more than ``max_body_values`` values and keys is
refused (400 ``invalid_body``) before any parser sees it: 1,000,000 values by default,
three times the largest request OpenAI takes (an embeddings request's 300,000 token ids).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from json import scanner
from typing import Any

import ijson

from . import errors
from .json_scan import MAX_JSON_DEPTH, SLICE, scan

LARGE_BODY = 256 * 1024
MANY_VALUES = 100_000
MAX_VALUES = 1_000_000
"""``max_body_values``'s default: the JSON values and keys a body may hold (``json_scan.py``)."""


def loads(
    data: bytes,
    max_values: int | None = None,
    max_depth: int | None = MAX_JSON_DEPTH,
    past_values: Callable[[int], errors.OpenAIError] = errors.too_many_values,
) -> Any:
    """``json.loads``, a large body of many values a slice at a time (see the module's
    docstring): its ``ValueError`` for what does not parse, and, before any parser keeps
    state (``json_scan.py``: O(its bytes) time, O(1) memory), ``errors.too_deep`` past
    ``max_depth`` levels and ``past_values(max_values)`` past ``max_values`` values and
    keys."""
    shape = scan(data, max_depth, max_values)
    if max_depth is not None and shape.depth > max_depth:
        raise errors.too_deep(max_depth)
    if max_values is not None and shape.values > max_values:
        raise past_values(max_values)
    if len(data) > LARGE_BODY and shape.values > MANY_VALUES:
        return _sliced(data)
    return json.loads(data)


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
