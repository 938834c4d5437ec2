r"""An upstream's HTTP response, turned into a ``Relayed`` answer: its status, the headers
its upstream's rules let through (``headers.py``: an allow-list), the body relayed unparsed
- except the model id when the client used one of our aliases, and an event stream's line
ends: OpenAI ends lines with ``\n``, some OpenAI-compatible servers with ``\r\n``
(sse-starlette's default, so llama-cpp-python's server), and a client that splits on
``"\n\n"`` would see none of their events. Every stream relayed here is framed as OpenAI
frames it, and passed on an event at a time, each whole and within the upstream's read
limit (``event_frames.py``): every reader of a relayed stream after this one reads bounded
events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp

from ...errors import OpenAIError, upstream_broken_off, upstream_unreadable
from ...json.text import LARGE_BODY
from ...off_loop import off_loop
from ..base import Relayed, Stream
from .event_frames import EventFrames, EventTooLong
from .http_client import UpstreamClient, read_within
from .renaming import events_with_model, with_model

log = logging.getLogger(__name__)

# A body up to this size that says its length is read whole and sent in one piece.
WHOLE_BODY_MAX = 1 << 20


async def openai_line_ends(chunks: AsyncIterator[bytes]) -> Stream[bytes]:
    r"""An event stream with every line ending in ``\n`` (SSE also allows ``\r\n`` and
    ``\r``). A ``\r`` that ends a chunk waits for the next one, which may start with its
    ``\n``. JSON payloads hold no raw ``\r``, so only line ends change; a stream already
    framed with ``\n`` passes as it came."""
    held = b""
    async for chunk in chunks:
        chunk, held = held + chunk, b""
        if chunk.endswith(b"\r"):
            chunk, held = chunk[:-1], b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if chunk:
            yield chunk
    if held:
        yield b"\n"


async def framed(
    chunks: Stream[bytes], limit: int, upstream: str, error_event: Callable[[OpenAIError], bytes]
) -> Stream[bytes]:
    """An event stream passed on whole events at a time; an event longer than ``limit``
    ends it with the API's error event (the bytes of it already read are dropped). A long
    event's pieces are joined beside the loop (``EventFrames.joins_long``)."""
    frames = EventFrames(limit)
    try:
        async for chunk in chunks:
            events = await off_loop(frames.joins_long(chunk), frames.feed, chunk)
            if events:
                yield events
    except EventTooLong as exc:
        log.warning("upstream %s: %s; the stream ended there", upstream, exc)
        yield error_event(upstream_unreadable())
        return
    finally:
        await chunks.aclose()
    if rest := frames.rest():
        yield rest


async def _events_with_model(chunks: AsyncIterator[bytes], model_id: str) -> Stream[bytes]:
    """Server-sent events (whole ones: ``framed``) with ``model`` replaced in every JSON
    ``data:`` line."""
    async for chunk in chunks:
        yield await off_loop(len(chunk) > LARGE_BODY, events_with_model, chunk, model_id)  # an event may be 64 MiB


def _is_event_stream(response: aiohttp.ClientResponse) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


def _finish(response: aiohttp.ClientResponse) -> None:
    """Back to the pool when read to the end; otherwise close the connection, which is what
    ends the request upstream (client gone)."""
    if response.content.at_eof():
        response.release()
    else:
        response.close()


def openai_error_event(error: OpenAIError) -> bytes:
    return b"data: " + json.dumps(error.body()).encode() + b"\n\n"


async def _body(
    response: aiohttp.ClientResponse, upstream: str, timeout: float, error_event: Callable[[OpenAIError], bytes] = openai_error_event
) -> Stream[bytes]:
    """The body as it arrives. A failure midway cannot change the status any more: an
    event stream gets an error event, any other body is cut off (the client sees it
    incomplete, not silently short)."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        log.warning("upstream %s: %s while relaying", upstream, type(exc).__name__)
        if not _is_event_stream(response):
            raise
        yield error_event(upstream_broken_off(upstream, timeout, exc))
    finally:
        _finish(response)


async def relay(
    response: aiohttp.ClientResponse,
    client: UpstreamClient,
    *,
    rename: tuple[str, str] | None = None,
    error_event: Callable[[OpenAIError], bytes] = openai_error_event,
) -> Relayed:
    """Relay ``response``, an answer of ``client``'s upstream; ``rename`` = (field, model id)
    puts our alias back in place of the upstream's model id (``model`` of completions and
    chunks, ``id`` of a model); ``error_event``: a stream's failure midway as its API's
    event (OpenAI's by default)."""
    upstream, timeout = client.name, client.timeout
    headers = client.rules.answer(response.raw_headers)
    length = response.content_length
    renamed = rename if response.status < 400 else None  # an error is the upstream's, as it came
    if not _is_event_stream(response) and (renamed is not None or length is not None and length <= WHOLE_BODY_MAX):
        # An answer to rename is read whole, however long (within the read limit: 502 past
        # it), and without a length: else our alias showed only in short ones.
        try:
            content = await (read_within(response, client.read_limit) if renamed is not None else response.read())
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise upstream_broken_off(upstream, timeout, exc) from None
        finally:
            response.release()
        if renamed is not None:
            content = await off_loop(len(content) > LARGE_BODY, with_model, content, *renamed)
        return Relayed(response.status, headers, content=content)

    async def close() -> None:
        _finish(response)

    chunks = _body(response, upstream, timeout, error_event)
    if _is_event_stream(response):
        # As this service's own streams (sse-starlette's): a buffering proxy in front (nginx)
        # passes each event on as it comes, whatever the upstream said of its own hosting.
        headers.append((b"x-accel-buffering", b"no"))
        # Never compressed: the client refuses such an answer (``http_client.py``).
        chunks = framed(openai_line_ends(chunks), client.read_limit, upstream, error_event)
        if rename is not None:
            chunks = _events_with_model(chunks, rename[1])
    return Relayed(response.status, headers, chunks=chunks, close=close)
