r"""Every upstream stream metered, whatever the client asked: a streamed chat completion or
completion relayed to an upstream always asks it for its usage
(``stream_options.include_usage``), and the client's stream carries that usage only if the
client asked for it.

OpenAI reports a stream's usage only when asked: then a last chunk with ``"choices": []``
and ``usage``, and ``"usage": null`` in every other chunk; without it, no chunk has a
``usage`` member at all. The OpenAI SDK does not ask by default, so before this every such
stream through an upstream cost nothing (issue #47: spend, usage, token limits all missed
it). What the client did not ask for is taken out of the relayed bytes here: the usage
chunk dropped, ``"usage": null`` members removed; every other byte passes as it came. The
usage goes to the HTTP layer's meter beside the bytes (``usage_withheld``), counted there as
an answer's usage it read would be (``http/metrics.py``).

Events are framed across network chunks before they are read: an upstream may split an
event (its usage too) over two TCP writes. Only an event with ``"usage"`` in it is parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from ...json.text import LARGE_BODY
from ...json.types import Json
from ...off_loop import off_loop
from ..base import Relayed, Stream, usage_withheld
from .event_frames import EventFrames, split

USAGE = b'"usage"'
# ``"usage": null`` as a member of an object: after a comma, or first and before one.
NULL_AFTER = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])')
NULL_FIRST = re.compile(rb'"usage"\s*:\s*null\s*,')


def asked(request: Json) -> bool:
    """Whether a request's client asked for its stream's usage."""
    options = request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def metered(request: Json) -> Json | None:
    """The request as sent upstream when its stream's usage must be asked for in the client's
    stead (None: not a stream, or the client asked itself)."""
    if request.get("stream") is not True or asked(request):
        return None
    options = request.get("stream_options")
    return {**request, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}


def withheld(answer: Relayed) -> Relayed:
    """``answer`` without the usage its client did not ask for; the usage told to the HTTP
    layer (``usage_withheld``, read now: the stream is read in another task)."""
    if answer.chunks is None or answer.status >= 400:
        return answer
    return replace(answer, chunks=_without_usage(answer.chunks, usage_withheld.get()))


async def _without_usage(chunks: AsyncIterator[bytes], heard: Callable[[Json], None]) -> Stream[bytes]:
    frames = EventFrames()  # bounded where the relay framed the stream (event_frames.py)
    async for chunk in chunks:
        events = frames.feed(chunk)  # an event split by the network is held until it ends
        if USAGE in events:
            events = await _withheld(split(events), heard)
        if events:
            yield events
    if pending := frames.rest():
        yield await _withheld([pending], heard) if USAGE in pending else pending


async def _withheld(events: list[bytes], heard: Callable[[Json], None]) -> bytes:
    """``events`` without their usage, which ``heard`` is told (on the loop); read off the
    loop when large: an event may be as long as the upstream's read limit."""
    usages: list[Json] = []
    size = sum(map(len, events))
    kept = await off_loop(size > LARGE_BODY, lambda: b"".join(_event_without_usage(event, usages.append) for event in events))
    for usage in usages:
        heard(usage)
    return kept


def _event_without_usage(event: bytes, heard: Callable[[Json], None]) -> bytes:
    """One event (its ``\n\n`` included): as it came, without its ``usage`` member, or
    nothing when it was the usage chunk."""
    if USAGE not in event:
        return event
    lines = event.split(b"\n")
    for index, line in enumerate(lines):
        if not line.startswith(b"data:") or USAGE not in line:
            continue
        try:
            chunk = json.loads(line[5:])
        except ValueError:
            continue
        if not isinstance(chunk, dict) or "usage" not in chunk:
            continue
        usage = chunk["usage"]
        if isinstance(usage, dict):
            heard(usage)
            if not chunk.get("choices"):
                return b""  # the usage chunk: only there because we asked
            # Usage on a chunk that has choices (some servers send it so): the chunk without it.
            del chunk["usage"]
            lines[index] = b"data: " + json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode()
        elif usage is None:
            lines[index] = _without_null(line, chunk)
    return b"\n".join(lines)


def _without_null(line: bytes, chunk: Json) -> bytes:
    """A ``data:`` line without its ``"usage": null`` member, every other byte kept."""
    if line.count(USAGE) == 1:
        for pattern in (NULL_AFTER, NULL_FIRST):
            without, removed = pattern.subn(b"", line, count=1)
            if removed:
                return without
    # A nested ``"usage"`` too (no upstream sends one): the chunk encoded again.
    del chunk["usage"]
    return b"data: " + json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode()
