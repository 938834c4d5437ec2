"""A pooled deployment's answer, held so the pool can still fail over and count its load.

Two wrappers around whatever a deployment's method returned (an object, a local stream, a
relayed answer): ``started`` awaits a local stream's first chunk before the pool decides the
deployment answered (a failure to start can still go elsewhere: the client has seen
nothing); ``tracked`` keeps the answer counted as outstanding on its deployment until it has
been sent whole, or the client left. Apart from ``pool.py`` so that the pool reads as its
routing and failover, and these stream mechanics in one sitting.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

from ..json.types import Json
from .base import Relayed, Stream

T = TypeVar("T")


class Counted(Protocol):
    """What ``tracked`` needs of a deployment (``pool.Deployment``): its requests in flight."""

    outstanding: int


async def started(answer: Any) -> Any:
    """A local stream's first chunk is awaited here, so that a failure to start (a crashed
    or saturated engine) can still go to another deployment: the client has seen nothing."""
    if isinstance(answer, (dict, Relayed)) or not hasattr(answer, "__anext__"):
        return answer
    try:
        first = await answer.__anext__()
    except StopAsyncIteration:
        return _empty()
    except BaseException:
        await answer.aclose()
        raise
    return _prepended(first, answer)


async def _empty() -> Stream[Json]:
    return
    yield  # pragma: no cover


async def _prepended(first: Json, rest: Stream[Json]) -> Stream[Json]:
    async with aclosing(rest):
        yield first
        async for chunk in rest:
            yield chunk


def tracked(answer: Any, deployment: Counted) -> Any:
    """The answer, counted as outstanding on its deployment until it is fully sent (or the
    client left: a relayed answer is then closed rather than read to its end)."""
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            deployment.outstanding -= 1

    if isinstance(answer, Relayed):
        if answer.chunks is None:
            release()
            return answer
        close = answer.close

        async def closed() -> None:
            release()
            if close is not None:
                await close()

        answer.chunks = _counted(answer.chunks, release)
        answer.close = closed
        return answer
    if isinstance(answer, dict) or not hasattr(answer, "__anext__"):
        release()
        return answer
    return _counted(answer, release)


async def _counted(chunks: Stream[T], release: Callable[[], None]) -> Stream[T]:
    try:
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk
    finally:
        release()
