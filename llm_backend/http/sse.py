r"""Server-sent events for streamed answers, framed byte for byte the way OpenAI frames them.

Each chunk is one ``data:`` event; the stream ends with ``data: [DONE]``. An error after the
first byte can no longer change the status, so it is sent as an ``{"error": ...}`` event.
Named events (Responses) are ``event: <type>`` then ``data: <event>``, with no ``[DONE]``.

Lines end with ``\n`` and events with ``\n\n``, as OpenAI's do. sse-starlette's own
default is ``\r\n`` (the SSE standard allows both), and a ``ServerSentEvent`` keeps that
default whatever the response's ``sep`` says: every stream went out with ``\r\n``, and a
client that splits on ``"\n\n"`` (the Open Responses compliance suite, many hand-written
parsers) saw no event at all. Every event here is made by ``_event``.

On SIGTERM (a rolling update, a scale-down) sse-starlette cuts every open stream at once. An
answer is finite: it is finished instead, within uvicorn's graceful shutdown timeout (the
``shutdown_grace`` setting), while the replica takes no new connections. Measured with two
replicas under load (`make deploy-check`): a graceful stop of one lost 3 of the 8 requests
in flight before (their streams were cut), none after. An endless stream (a watch) ends at
once, its body whole: a client reconnects as after a cut, and uvicorn logs no error ("ASGI
callable returned without completing response", one per open watch at each stop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from ..backends.base import Stream
from ..errors import OpenAIError

log = logging.getLogger(__name__)


# OpenAI's line end (see above); the keep-alive comments use it too.
LF = "\n"


def _encode(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _event(data: str, name: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(data=data, event=name, sep=LF)


async def _events(chunks: Stream[dict[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for chunk in chunks:
            yield _event(_encode(chunk))
    except OpenAIError as error:
        log.warning("stream failed: %s", error.message)
        yield _event(_encode(error.body()))
        return
    finally:
        # Runs on client disconnect too: releases the engine slot at once.
        await chunks.aclose()
    yield _event("[DONE]")


# An answer's stream outlives the shutdown signal: uvicorn's timeout bounds the wait.
FINISH_ON_SHUTDOWN = math.inf
# An endless stream's end at the signal (``_until``) takes a step of the loop; then it is cut.
END_ON_SHUTDOWN = 1.0


def event_stream(chunks: Stream[dict[str, Any]]) -> EventSourceResponse:
    return EventSourceResponse(_events(chunks), sep=LF, ping=15, shutdown_grace_period=FINISH_ON_SHUTDOWN)


async def _named(events: Stream[tuple[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for name, data in events:
            yield _event(_encode(data), name)
    finally:
        await events.aclose()


def status_stream(events: Stream[tuple[str, Any]], endless: bool = False) -> EventSourceResponse:
    """Named events (``event: <name>`` with JSON ``data``) until they end or the client goes
    away; a comment every 15 seconds keeps idle connections open through proxies. An
    ``endless`` stream (a watch) ends when the server shuts down; others are finished."""
    if not endless:
        return EventSourceResponse(_named(events), sep=LF, ping=15, shutdown_grace_period=FINISH_ON_SHUTDOWN)
    stopping = anyio.Event()  # set by sse-starlette at the shutdown signal
    return EventSourceResponse(
        _named(_until(events, stopping)), sep=LF, ping=15, shutdown_event=stopping, shutdown_grace_period=END_ON_SHUTDOWN
    )


async def _next(events: Stream[tuple[str, Any]]) -> tuple[str, Any]:
    return await anext(events)


async def _until(events: Stream[tuple[str, Any]], stopping: anyio.Event) -> Stream[tuple[str, Any]]:
    """``events`` until ``stopping`` is set: the wait for the next one is given up then."""
    stop = asyncio.ensure_future(stopping.wait())
    following: asyncio.Task | None = None
    try:
        while True:
            following = asyncio.create_task(_next(events))
            await asyncio.wait((following, stop), return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                return
            try:
                event = following.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        stop.cancel()
        # As ``Silence.ticking`` lets go (serving/keepalive.py): shielded, so that the client
        # leaving does not cut short the events' own cleanup (a watch's subscription).
        with anyio.CancelScope(shield=True):
            if following is not None and not following.done():
                following.cancel()
                await asyncio.wait((following,))
            await events.aclose()
