"""Reading a request body whole, and handing the same messages on to the next app.

The one body reader of the HTTP layer: the body limit (chunked bodies), the fast lane and
forwarding read through it, so a body is read from the socket once however it is served.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive

from .. import errors


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


def parse_json(body: bytes) -> Any:
    """A JSON body, or OpenAI's 400 for one that does not parse: malformed, not UTF-8, or
    nested deeper than the parser goes (a ``RecursionError``, once a 500)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.invalid_json() from None
