"""Reading an upstream's relayed answer as OpenAI objects while its bytes pass on unchanged:
the serving layer stores what an upstream answered without re-encoding what the client gets."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from ..backends.base import Relayed, Stream
from ..backends.upstream.event_frames import EventFrames
from ..json.text import LARGE_BODY
from ..json.types import Json
from ..off_loop import off_loop

log = logging.getLogger(__name__)
DONE = "[DONE]"


def is_event_stream(answer: Relayed) -> bool:
    return any(name == b"content-type" and value.startswith(b"text/event-stream") for name, value in answer.headers)


def data_of(events: bytes) -> list[str]:
    """The ``data:`` payloads of whole server-sent events (``EventFrames``' output)."""
    return [line[5:].strip().decode("utf-8", "replace") for line in events.split(b"\n") if line.startswith(b"data:")]


def object_of(data: str) -> Json | None:
    """The JSON object an event's data (or a body) holds; None for anything else."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _body_object(body: bytes | bytearray) -> Json | None:
    return object_of(body.decode("utf-8", "replace"))


def parsed(answer: Relayed) -> Json | None:
    """The JSON object of a whole (not streamed) answer."""
    return _body_object(answer.content) if answer.content is not None else None


def observe(answer: Relayed, seen: Callable[[list[Json], bool], Awaitable[None]], limit: int) -> Relayed:
    """A streamed ``answer`` passed on as it is; ``seen(objects, finished)`` is awaited once
    with what it carried: a stream's chunks (``finished`` once its ``[DONE]`` arrived, and
    before that event is passed on), or the object of a long body sent in pieces. Past
    ``limit`` bytes (the upstream's read limit) nothing more is kept and nothing is seen:
    what is kept to be read never grows past it, whatever the upstream sends."""
    if answer.chunks is None:  # a whole body: ``parsed``
        return answer
    return replace(answer, chunks=_observed(answer.chunks, is_event_stream(answer), seen, limit))


async def _observed(
    chunks: AsyncIterator[bytes], event_stream: bool, seen: Callable[[list[Json], bool], Awaitable[None]], limit: int
) -> Stream[bytes]:
    objects: list[Json] = []
    body = bytearray()
    frames = EventFrames()  # bounded where the relay framed the stream (event_frames.py)
    kept = 0
    reported = False
    try:
        async for chunk in chunks:
            kept += len(chunk)
            if kept > limit and not reported:
                log.warning("a relayed answer past %d bytes: passed on, not kept", limit)
                reported, objects, body = True, [], bytearray()
            if reported:
                yield chunk
                continue
            if not event_stream:
                body += chunk
                yield chunk
                continue
            events = frames.feed(chunk)
            # An event may be as long as the read limit: its lines cut and decoded beside the loop.
            for data in await off_loop(len(events) > LARGE_BODY, data_of, events):
                if data == DONE and not reported:
                    reported = True
                    await seen(objects, True)
                elif (parsed := await off_loop(len(data) > LARGE_BODY, object_of, data)) is not None:
                    objects.append(parsed)
            yield chunk
        whole = body if not event_stream and not reported else b""
        if whole and (parsed := await off_loop(len(whole) > LARGE_BODY, _body_object, whole)) is not None:
            reported = True
            await seen([parsed], True)
    finally:
        if not reported and objects:
            await seen(objects, False)
