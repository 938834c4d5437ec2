"""Reading a request body whole, and handing the same messages on to the next app; and
parsing a JSON body, with the work a large one costs kept off the event loop.

The one body reader of the HTTP layer: the body limit (chunked bodies), the fast lane and
forwarding read through it, so a body is read from the socket once however it is served.

The event loop does no work sized by the input (issue #39): a body up to ``LARGE_BODY``
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
import tempfile
from collections.abc import AsyncIterator
from json import scanner
from json.decoder import scanstring
from typing import Any

import ijson

from starlette.types import Message, Receive

from .. import errors
from ..json_depth import MAX_JSON_DEPTH, too_deep


class TooLarge(Exception):
    """The body passed ``limit`` bytes before it ended."""


async def read_body(receive: Receive, limit: int | None = None) -> tuple[bytes | None, Receive]:
    """The whole body (None if the client left first), and a receive that gives the same
    messages again before any later one. Raises ``TooLarge`` past ``limit`` bytes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            body = None
            break
        size += len(message.get("body", b""))
        if limit is not None and size > limit:
            raise TooLarge
        if not message.get("more_body"):
            body = b"".join(m.get("body", b"") for m in messages)
            break
    if body is not None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
    replay = list(messages)

    async def replayed() -> Message:
        return replay.pop(0) if replay else await receive()

    return body, replayed


SPOOL_IN_MEMORY = 1 << 20
REPLAY_CHUNK = 1 << 20


class Spool:
    """A body in a temporary file (in memory up to 1 MB, then on disk), never whole in
    memory: for uploads, which may be 512 MB."""

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        self.size = 0

    @classmethod
    async def read(cls, receive: Receive, limit: int | None = None) -> "Spool | None":
        """The whole body (None if the client left first). Raises ``TooLarge`` past ``limit``."""
        spool = cls()
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    spool.close()
                    return None
                chunk = message.get("body", b"")
                spool.size += len(chunk)
                if limit is not None and spool.size > limit:
                    raise TooLarge
                spool.file.write(chunk)
                if not message.get("more_body"):
                    return spool
        except BaseException:
            spool.close()
            raise

    def in_memory(self) -> bytes | None:
        """The body, when it is small enough to have stayed in memory."""
        if self.size > SPOOL_IN_MEMORY:
            return None
        self.file.seek(0)
        return self.file.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body from its start, in 1 MB parts (again on each call: a retry resends it)."""
        self.file.seek(0)
        while chunk := self.file.read(REPLAY_CHUNK):
            yield chunk

    def close(self) -> None:
        self.file.close()


async def spool_body(receive: Receive, limit: int) -> tuple[int | None, Receive]:
    """Like ``read_body`` for uploads (``Spool``): the body's size (None if the client left
    first) and a receive that replays it in 1 MB messages. Raises ``TooLarge`` past ``limit``."""
    spool = await Spool.read(receive, limit)
    if spool is None:
        return None, receive
    spool.file.seek(0)
    left = spool.size

    async def replayed() -> Message:
        nonlocal left
        if spool.file.closed:
            return await receive()
        chunk = spool.file.read(REPLAY_CHUNK)
        left -= len(chunk)
        if left <= 0:
            spool.close()
        return {"type": "http.request", "body": chunk, "more_body": left > 0}

    return spool.size, replayed


LARGE_BODY = 256 * 1024
MANY_VALUES = 100_000
SLICE = 64 * 1024
MAX_VALUES = 1_000_000
"""``max_body_values``'s default: the JSON values and keys a body may hold (see ``counted``)."""


def parse_json(body: bytes, max_values: int = MAX_VALUES) -> Any:
    """A JSON body, or OpenAI's 400 for one that does not parse (malformed, not UTF-8), that
    nests deeper than ``MAX_JSON_DEPTH`` (issue #33: every lane's body comes through here;
    deeper than a parser goes, a ``RecursionError``, is that too) or that holds more than
    ``max_values`` values and keys (``counted``). A body of many values is parsed a slice
    at a time (see the module's docstring): call it off the loop (``off_loop.py``) for a
    body above ``LARGE_BODY``."""
    try:
        value = loads(body, max_values)
    except (UnicodeDecodeError, ValueError):
        raise errors.invalid_json() from None
    except RecursionError:
        raise errors.too_deep(MAX_JSON_DEPTH) from None
    if too_deep(value):
        raise errors.too_deep(MAX_JSON_DEPTH)
    return value


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
