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
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from collections.abc import AsyncIterator
from json import scanner
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


def parse_json(body: bytes) -> Any:
    """A JSON body, or OpenAI's 400 for one that does not parse (malformed, not UTF-8) or
    that nests deeper than ``MAX_JSON_DEPTH`` (issue #33: every lane's body comes through
    here; deeper than a parser goes, a ``RecursionError``, is that too). A body of many
    values is parsed a slice at a time (see the module's docstring): call it off the loop
    (``off_loop.py``) for a body above ``LARGE_BODY``."""
    try:
        value = loads(body)
    except (UnicodeDecodeError, ValueError):
        raise errors.invalid_json() from None
    except RecursionError:
        raise errors.too_deep(MAX_JSON_DEPTH) from None
    if too_deep(value):
        raise errors.too_deep(MAX_JSON_DEPTH)
    return value


def loads(data: bytes) -> Any:
    """``json.loads``, a large body of many values a slice at a time (see the module's
    docstring): its ``ValueError`` or ``RecursionError`` for what does not parse."""
    if len(data) > LARGE_BODY and data.count(b",") > MANY_VALUES:
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
