"""An upstream's chat completion read as OpenAI objects: the ``chat.completion``, or its
chunks as they arrive, for serving code that builds its own answer on it (the Responses
API served here over an upstream that speaks only chat completions).

Plain chat completions never come this way: they are relayed unparsed (``relay.py``).
An upstream's error answer becomes the ``OpenAIError`` it describes (its status and its
error body), so a client of the Responses layer sees what the upstream refused and why.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp

from ...errors import upstream_broken_off, upstream_error, upstream_unreadable
from ...json.text import LARGE_BODY
from ...json.types import Json
from ...off_loop import off_loop
from ..base import Objects, Stream
from .event_frames import EventFrames, EventTooLong
from .http_client import read_within
from .relay import openai_line_ends

log = logging.getLogger(__name__)

DONE = b"[DONE]"


async def _whole(response: aiohttp.ClientResponse, upstream: str, timeout: float, limit: int) -> bytes:
    try:
        return await read_within(response, limit)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise upstream_broken_off(upstream, timeout, exc) from None
    finally:
        response.release()


async def chat_answer(response: aiohttp.ClientResponse, upstream: str, timeout: float, limit: int) -> Objects:
    """The ``chat.completion`` of ``response``, or its chunks when it is an event stream;
    ``limit``: the most of it held at once (the whole answer, or one event)."""
    if response.status >= 400:
        body = await _whole(response, upstream, timeout, limit)
        raise await off_loop(len(body) > LARGE_BODY, upstream_error, response.status, body, upstream)
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        body = await _whole(response, upstream, timeout, limit)
        try:
            completion = await off_loop(len(body) > LARGE_BODY, json.loads, body)  # up to the read limit: 64 MiB
        except ValueError:
            completion = None
        if not isinstance(completion, dict) or not completion.get("choices"):
            raise upstream_error(502, body, upstream)
        return completion
    return _chunks(response, upstream, timeout, limit)


async def _lines(response: aiohttp.ClientResponse, limit: int) -> AsyncIterator[bytes]:
    """The lines of an event stream's whole events (the last one's without its blank line)."""
    frames = EventFrames(limit)
    async for piece in openai_line_ends(response.content.iter_any()):
        for line in frames.feed(piece).split(b"\n"):
            yield line
    for line in frames.rest().split(b"\n"):
        yield line


async def _chunks(response: aiohttp.ClientResponse, upstream: str, timeout: float, limit: int) -> Stream[Json]:
    """The ``data:`` objects of an event stream up to ``[DONE]``; an error event (sent by an
    upstream that failed mid-stream) is raised as the error it describes, and an event
    longer than ``limit`` as ``upstream_unreadable`` (``event_frames.py``)."""
    try:
        async for line in _lines(response, limit):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == DONE:
                return
            try:
                chunk = await off_loop(len(data) > LARGE_BODY, json.loads, data)  # an event may be 64 MiB
            except ValueError:
                continue
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk and "choices" not in chunk:
                raise upstream_error(502, data, upstream)
            yield chunk
    except EventTooLong as exc:
        log.warning("upstream %s: %s while streaming", upstream, exc)
        raise upstream_unreadable() from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        log.warning("upstream %s: %s while streaming", upstream, type(exc).__name__)
        raise upstream_broken_off(upstream, timeout, exc) from None
    finally:
        # Read to the end: back to the pool; else closed, which ends the request upstream.
        if response.content.at_eof():
            response.release()
        else:
            response.close()
