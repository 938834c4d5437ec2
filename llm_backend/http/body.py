"""Reading a request body whole, and handing the same messages on to the next app; and
parsing a JSON body, with the work a large one costs kept off the event loop.

The one body reader of the HTTP layer: the body limit (chunked bodies), the fast lane and
forwarding read through it, so a body is read from the socket once however it is served.

A JSON body is parsed by ``json_text.loads`` within its budgets (depth, values: scanned
over its bytes before any parser keeps state, ``json/scan.py``), an object's key at most
once, off the event loop when large: see that module.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Message, Receive

from .. import errors
from ..json.text import MAX_VALUES, loads


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


def parse_json(body: bytes, max_values: int = MAX_VALUES) -> Any:
    """A JSON body, or OpenAI's 400 for one that does not parse (malformed, not UTF-8), that
    nests deeper than ``MAX_JSON_DEPTH`` or holds more than ``max_values`` values and keys
    (both ``invalid_body``, from a scan of its bytes before any parser keeps state:
    ``json/scan.py``), or whose object holds a key twice (``duplicate_key``: the bytes may
    be relayed, and another parser keep the other value). A body of many values is parsed a
    slice at a time (see the module's docstring): call it off the loop (``off_loop.py``) for
    a body above ``LARGE_BODY``."""
    try:
        return loads(body, max_values)
    except (UnicodeDecodeError, ValueError):
        raise errors.invalid_json() from None
