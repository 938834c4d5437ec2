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
event (its usage too) over two TCP writes. Only an event with ``"usage"`` in it is parsed,
and not one whose ``"usage":null`` is its last member, as OpenAI writes every chunk: an
event may be as long as the upstream's read limit, and reading 48 MiB into objects held the
GIL (and ``/health``) for its whole parse. What is kept of the events is one copy of them.
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
from .event_frames import EVENT_END, EventFrames, holds

USAGE = b'"usage"'
# ``"usage": null`` as a member of an object: after a comma, or first and before one.
NULL_AFTER = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])')
NULL_FIRST = re.compile(rb'"usage"\s*:\s*null\s*,')
# ... and as the last member of the line's object, as OpenAI writes it: an unescaped quote
# after a comma opens a key, and the object it ends in is the one the line's last brace closes.
NULL_LAST = re.compile(rb'(,\s*"usage"\s*:\s*null)\s*\}\s*\Z')


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
        if len(events) > LARGE_BODY or USAGE in events:  # a large one is looked into off the loop
            events = await _withheld(events, heard)
        if events:
            yield events
    if pending := frames.rest():
        yield await _withheld(pending, heard) if USAGE in pending else pending


async def _withheld(events: bytes, heard: Callable[[Json], None]) -> bytes:
    """``events`` (whole, or the last one without its blank line) without their usage, which
    ``heard`` is told (on the loop); read off the loop when large: an event may be as long
    as the upstream's read limit."""
    usages: list[Json] = []
    kept = await off_loop(len(events) > LARGE_BODY, _without_usages, events, usages.append)
    for usage in usages:
        heard(usage)
    return kept


def _without_usages(events: bytes, heard: Callable[[Json], None]) -> bytes:
    """``events`` without their usage, in one copy of what is kept (an event may be 64 MiB:
    its pieces are slices of it, joined once), or the events themselves when none has any."""
    if not holds(events, USAGE):
        return events
    view = memoryview(events)
    pieces: list[bytes | memoryview] = []
    done = 0  # where the bytes not yet in ``pieces`` start
    for start, end in _spans(events):
        kept = _event_without_usage(events, start, end, heard)
        if kept is not None:
            pieces += [view[done:start], *kept]
            done = end
    if not pieces:
        return events
    pieces.append(view[done:])
    return b"".join(pieces)


def _spans(events: bytes) -> list[tuple[int, int]]:
    """Where each event of ``events`` starts and ends, its blank line included (a last one
    may have none)."""
    spans, start = [], 0
    while start < len(events):
        end = events.find(EVENT_END, start)
        end = len(events) if end < 0 else end + 2
        spans.append((start, end))
        start = end
    return spans


def _event_without_usage(events: bytes, start: int, end: int, heard: Callable[[Json], None]) -> list[bytes | memoryview] | None:
    """The event ``events[start:end]`` (its ``\n\n`` included) without its ``usage``
    member, as pieces (``[]``: it was the usage chunk), or None: it has none."""
    view, done, line = memoryview(events), start, start
    pieces: list[bytes | memoryview] = []
    while line < end:
        stop = events.find(b"\n", line, end)
        stop = end if stop < 0 else stop
        if events.startswith(b"data:", line, stop) and holds(events, USAGE, line, stop):
            if (last := NULL_LAST.search(events, max(stop - 64, line), stop)) is not None:
                # OpenAI's every chunk but the usage one, however long: nothing to read.
                pieces += [view[done : last.start(1)]]
                done = last.end(1)
            elif (without := _line_without_usage(events[line:stop], heard)) is not None:
                if not without:
                    return []  # the usage chunk: only there because we asked
                pieces += [view[done:line], without]
                done = stop
        line = stop + 1
    return pieces + [view[done:end]] if pieces else None


def _line_without_usage(line: bytes, heard: Callable[[Json], None]) -> bytes | None:
    """A ``data:`` line without its ``usage`` member (None: it has none; ``b""``: it was the
    usage chunk), the usage told to ``heard``."""
    try:
        chunk = json.loads(line[5:])
    except ValueError:
        return None
    if not isinstance(chunk, dict) or "usage" not in chunk:
        return None
    usage = chunk["usage"]
    if isinstance(usage, dict):
        heard(usage)
        if not chunk.get("choices"):
            return b""
        # Usage on a chunk that has choices (some servers send it so): the chunk without it.
        del chunk["usage"]
        return b"data: " + json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode()
    if usage is None:
        return _without_null(line, chunk)
    return None


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
