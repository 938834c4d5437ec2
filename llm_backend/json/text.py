"""JSON text read within a request's budgets, with the work a large one costs kept off the
event loop (issue #39): every lane's JSON (HTTP bodies through ``http/body.parse_json``,
WebSocket events, batch lines and their answers) is read here.

The event loop does no work sized by the input: a body up to ``LARGE_BODY``
is parsed and checked on the loop (the worst 256 KiB, 131 000 zeros, parses in 5 ms), a
larger one in a thread (``off_loop.py``). A thread alone is not enough: ``json.loads`` is
one C call holding the GIL, 0.25 s for the worst 8 MiB body (2.79 million empty objects,
measured), during which the loop could not answer even ``/health``. So a large body of
many values (``MANY_VALUES``: the parse's cost is its values', a few long strings cost
little) is parsed in slices of about 64 KiB by ijson's C backend, each cut where the scan
found no string open, and the thread gives the GIL back between slices; what ijson reads otherwise than ``json.loads`` (an escaped surrogate,
which it turns into ``?``; NaN, numbers past 64 bits, a byte-order mark, which it refuses)
is parsed by the standard library's own pure-Python scanner, the reference its C one
mirrors, also a value at a time: a body means the same at any size.

Memory follows what a body expands to, not its bytes: 8 MiB of ``[0],`` is 2.8 million
Python objects (a completions prompt of them grew the API process by 421 MiB on its way to
a 400), and a parser's state follows its depth (ijson's ``items`` names each event's
path: 20,000 levels cost it 0.96 GB, 200,000 levels 18.7 GB, issue #47). So every text
is scanned first (``json/scan.py``: O(its bytes) time, O(1) memory, in slices), and one
deeper than ``MAX_JSON_DEPTH`` or of more than ``max_body_values`` values and keys is
refused (400 ``invalid_body``) before any parser sees it: 1,000,000 values by default,
three times the largest request OpenAI takes (an embeddings request's 300,000 token ids).

A key an object holds twice is refused (400 ``duplicate_key``, its path as ``param``: issue
#56): parsers differ on it (Python's keeps the last, others the first or refuse), and a body
relayed byte for byte (an Anthropic upstream's Messages, a forwarded operation) would be
admitted and priced by one reading and run by another. Found while the text is built, by
the parser's own object hook (``json.loads``' ``object_pairs_hook``, ijson's ``map_type``),
and only then named by a second reading that keeps where it is (``KeyPaths``, the streaming
guard's too: ``serving/request_ids.py``). Measured with ``loads`` (its scan included) on the
shared 2-core machine, before -> after: a 43 KB Codex request 0.38 -> 0.40 ms (its parse
alone 0.074 -> 0.097 ms); the worst body read on the loop, 256 KiB of ``{}``, 8.0 -> 17.8
ms (a hook call per object; its schema check then costs 39 ms); 8 MiB of ``{"a":0}`` in
slices 1.18 -> 1.80 s of a thread's time (a Python ``__setitem__`` per key), 8 MiB of
chat messages 0.47 -> 0.65 s, of numbers unchanged; the loop free throughout. Naming a
repeated key reads the text once more: the worst 256 KiB refused in 59 ms (no schema check
follows), a Codex request in 0.7 ms. An upstream's answer is read as it came
(``unique_keys=False``): its meter reads it as the client's SDK does, the last value kept.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from json import scanner
from typing import Any, cast

import ijson

from .. import errors
from .feeding import basic_events
from .scan import MAX_JSON_DEPTH, scan

LARGE_BODY = 256 * 1024
MANY_VALUES = 100_000
MAX_VALUES = 1_000_000
"""``max_body_values``'s default: the JSON values and keys a body may hold (``json/scan.py``)."""


def loads(
    data: bytes,
    max_values: int | None = None,
    max_depth: int | None = MAX_JSON_DEPTH,
    past_values: Callable[[int], errors.OpenAIError] = errors.too_many_values,
    unique_keys: bool = True,
) -> Any:
    """``json.loads``, a large body of many values a slice at a time (see the module's
    docstring): its ``ValueError`` for what does not parse, and, before any parser keeps
    state (``json/scan.py``: O(its bytes) time, O(1) memory), ``errors.too_deep`` past
    ``max_depth`` levels and ``past_values(max_values)`` past ``max_values`` values and
    keys; with ``unique_keys``, ``errors.duplicate_key`` for an object holding a key twice."""
    cuts: list[int] = []
    shape = scan(data, max_depth, max_values, cuts)
    if max_depth is not None and shape.depth > max_depth:
        raise errors.too_deep(max_depth)
    if max_values is not None and shape.values > max_values:
        raise past_values(max_values)
    try:
        if len(data) > LARGE_BODY and shape.values > MANY_VALUES:
            return _sliced(data, unique_keys, cuts)
        if not unique_keys:
            return json.loads(data)
        return _UNIQUE.decode(data.decode(json.detect_encoding(data), "surrogatepass"))  # json.loads' own steps
    except RepeatedKey as repeated:
        raise errors.duplicate_key(_where(data, repeated.key)) from None


class RepeatedKey(Exception):
    """A key an object holds twice, and where (``path``: ``messages[0].content``; None
    where the reader does not keep where it is)."""

    def __init__(self, key: str, path: str | None = None) -> None:
        super().__init__(key)
        self.key, self.path = key, path


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of ``json.loads`` (its ``object_pairs_hook``), refusing a key twice."""
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedKey(key)
            seen.add(key)
    return found


_UNIQUE = json.JSONDecoder(object_pairs_hook=_unique)


class _UniqueMap(dict):
    """An object of ijson's (its ``map_type``: what a text read in slices is built of),
    refusing a key twice; a dict otherwise (``isinstance``, ``==``, ``json.dumps``, pickle)."""

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            raise RepeatedKey(key)
        dict.__setitem__(self, key, value)


class KeyPaths:
    """Where a stream of ijson's events stands (each open object's keys, each open array's
    index), to name a key an object holds twice: ``event`` raises ``RepeatedKey`` with its
    path at its second appearance. It holds the keys of the objects open at once (``held``)."""

    __slots__ = ("keys", "places", "held")

    def __init__(self) -> None:
        self.keys: list[set[str] | None] = []  # an open object's keys so far; None: an array
        self.places: list[Any] = []  # the key or index of the value being read in each
        self.held = 0

    def event(self, event: str, value: Any) -> None:
        keys, places = self.keys, self.places
        if event == "map_key":
            held = cast("set[str]", keys[-1])  # ijson gives a key only inside an object: its set is on top
            if value in held:
                raise RepeatedKey(value, _path([*places[:-1], value]))
            held.add(value)
            places[-1] = value
            self.held += 1
        elif event == "end_map" or event == "end_array":
            closed = keys.pop()
            places.pop()
            self.held -= len(closed) if closed is not None else 0
        else:  # a value: the next of its array's
            if keys and keys[-1] is None:
                places[-1] += 1
            if event == "start_map":
                keys.append(set())
                places.append(None)
            elif event == "start_array":
                keys.append(None)
                places.append(-1)


def _path(places: list[Any]) -> str:
    """A place as OpenAI's ``param`` names it: ``messages[0].content``."""
    return "".join(f"[{place}]" if isinstance(place, int) else f".{place}" if i else place for i, place in enumerate(places))


def _where(data: bytes, key: str) -> str:
    """The path of the first key an object of ``data`` holds twice, read again by ijson
    keeping where it is; ``key`` alone where ijson does not read ``data`` as ``json.loads``."""
    if json.detect_encoding(data) == "utf-8" and not _IJSON_DIFFERS.search(data):
        paths = KeyPaths()
        try:
            for event, value in basic_events(data, use_float=True):
                paths.event(event, value)
        except RepeatedKey as repeated:
            return repeated.path or repeated.key
        except (ijson.JSONError, ValueError, IndexError):
            pass  # NaN, a number past 64 bits: json.loads' reading only
    return key


# What ijson's C backend reads otherwise than json.loads: an escaped surrogate (a lone one
# becomes "?"); a byte-order mark or another encoding than UTF-8 (see _sliced for the rest).
_IJSON_DIFFERS = re.compile(rb"\\u[dD][89a-fA-F]")


def _sliced(body: bytes, unique_keys: bool, cuts: Sequence[int]) -> Any:
    """``body`` read by ijson a slice at a time, each cut where the scan found it outside a
    string (``cuts``; none: in one piece): ijson lexes a string a piece leaves unfinished
    again with each piece, so a 32 MiB one in 64 KiB pieces took 2.7 CPU-s (0.06 whole)."""
    if json.detect_encoding(body) == "utf-8" and not _IJSON_DIFFERS.search(body):
        built = ijson.sendable_list()
        parser = ijson.items_coro(built, "", use_float=True, map_type=_UniqueMap if unique_keys else None)
        try:
            start = 0
            for end in [*cuts, len(body)]:
                if end > start:  # an empty piece would end the text, to ijson
                    parser.send(body[start:end])
                    start = end
            parser.close()
            return built[0]
        except (ijson.JSONError, ValueError, IndexError):
            pass  # NaN, a number past 64 bits, ... or malformed: json.loads's verdict, below
    return _reference_decoder(unique_keys).decode(body.decode(json.detect_encoding(body), "surrogatepass"))


@functools.cache
def _reference_decoder(unique_keys: bool) -> json.JSONDecoder:
    """``json.loads`` as the standard library's pure-Python scanner runs it: the same
    values and errors, a value at a time (the thread running it lets the loop in)."""
    decoder = json.JSONDecoder(object_pairs_hook=_unique if unique_keys else None)
    decoder.scan_once = scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]  # both real; typeshed omits them
    return decoder
