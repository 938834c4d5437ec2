"""Wrappers of a local answer's stream of chunks: started before the HTTP answer is, and
holding the model loaded until it ends or is closed."""

from __future__ import annotations

import contextlib
from ...json.types import Json
from ..base import Stream



class Primed:
    """A stream whose first chunk is already in hand; closing it closes the engine stream
    even if nobody iterated it yet (the client left before the first byte)."""

    def __init__(self, first: Json | None, chunks: Stream[Json]) -> None:
        self._first, self._chunks = first, chunks

    def __aiter__(self) -> "Primed":
        return self

    async def __anext__(self) -> Json:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()


async def primed(chunks: Stream[Json]) -> Stream[Json]:
    """Start a stream far enough that errors before the first token (queue full, context
    too long) still become a proper HTTP error instead of a broken stream."""
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        await chunks.aclose()
        raise
    return Primed(first, chunks)


class Held:
    """A stream that lets go of its model when it ends or is closed, started or not (an
    async generator's ``finally`` would not run if it were closed before its first step)."""

    def __init__(self, chunks: Stream[Json], hold: contextlib.AsyncExitStack) -> None:
        self._chunks = chunks
        self._hold = hold
        self._closed = False

    def __aiter__(self) -> "Held":
        return self

    async def __anext__(self) -> Json:
        try:
            return await self._chunks.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._chunks.aclose()
        finally:
            await self._hold.aclose()
