"""Reading an upstream's relayed answer as OpenAI objects while its bytes pass on unchanged:
the serving layer stores what an upstream answered without re-encoding what the client gets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from ..backends.base import Relayed, Stream
from ..json.types import Json

DONE = "[DONE]"


def is_event_stream(answer: Relayed) -> bool:
    return any(name == b"content-type" and value.startswith(b"text/event-stream") for name, value in answer.headers)


class EventData:
    """The ``data:`` payloads of server-sent events, fed the bytes as they arrive."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        return [line[5:].strip().decode("utf-8", "replace") for line in lines if line.startswith(b"data:")]


def _object(data: str) -> Json | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parsed(answer: Relayed) -> Json | None:
    """The JSON object of a whole (not streamed) answer."""
    return _object(answer.content.decode("utf-8", "replace")) if answer.content is not None else None


def observe(answer: Relayed, seen: Callable[[list[Json], bool], Awaitable[None]]) -> Relayed:
    """A streamed ``answer`` passed on as it is; ``seen(objects, finished)`` is awaited once
    with what it carried: a stream's chunks (``finished`` once its ``[DONE]`` arrived, and
    before that event is passed on), or the object of a long body sent in pieces."""
    if answer.chunks is None:  # a whole body: ``parsed``
        return answer
    return replace(answer, chunks=_observed(answer.chunks, is_event_stream(answer), seen))


async def _observed(
    chunks: AsyncIterator[bytes], event_stream: bool, seen: Callable[[list[Json], bool], Awaitable[None]]
) -> Stream[bytes]:
    objects: list[Json] = []
    body = bytearray()
    events = EventData()
    reported = False
    try:
        async for chunk in chunks:
            if not event_stream:
                body += chunk
                yield chunk
                continue
            for data in events.feed(chunk):
                if data == DONE and not reported:
                    reported = True
                    await seen(objects, True)
                elif (parsed := _object(data)) is not None:
                    objects.append(parsed)
            yield chunk
        if not event_stream and (parsed := _object(body.decode("utf-8", "replace"))) is not None:
            reported = True
            await seen([parsed], True)
    finally:
        if not reported and objects:
            await seen(objects, False)
