"""Server-sent events for streamed answers, the way OpenAI sends them.

Each chunk is one ``data:`` event; the stream ends with ``data: [DONE]``. An error after the
first byte can no longer change the status, so it is sent as an ``{"error": ...}`` event.
"""

from __future__ import annotations

import json
import logging
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


def event_stream(chunks: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    return EventSourceResponse(_events(chunks), sep="\n", ping=15)


async def _named(events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for name, data in events:
            yield ServerSentEvent(event=name, data=_encode(data))
    finally:
        await events.aclose()


def status_stream(events: AsyncIterator[tuple[str, Any]]) -> EventSourceResponse:
    """Named events (``event: <name>`` with JSON ``data``) until the client goes away; a
    comment every 15 seconds keeps idle connections open through proxies."""
    return EventSourceResponse(_named(events), sep="\n", ping=15)
