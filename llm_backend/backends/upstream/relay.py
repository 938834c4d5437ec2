"""An upstream's HTTP response, turned into a ``Relayed`` answer: status and headers as they
came (minus what is only about the hop), the body relayed unparsed - except the model id
when the client used one of our aliases."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx

from ...errors import OpenAIError, upstream_timeout
from ..base import Relayed

log = logging.getLogger(__name__)

# About the connection to us or the upstream's own hosting, not about the answer.
HOP_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"server",
        b"date",
        b"set-cookie",
        b"alt-svc",
        b"x-request-id",
    }
)
# A body up to this size that says its length is read whole and sent in one piece.
WHOLE_BODY_MAX = 1 << 20


def response_headers(response: httpx.Response, *, decoded: bool = False) -> list[tuple[bytes, bytes]]:
    """The headers the client sees: the upstream's (``x-ratelimit-*`` included), without
    hop-by-hop ones; the upstream's request id as ``x-upstream-request-id`` (ours is
    ``x-request-id``)."""
    headers = []
    for name, value in response.headers.raw:
        name = name.lower()
        if name in HOP_HEADERS:
            if name == b"x-request-id":
                headers.append((b"x-upstream-request-id", value))
        elif not (decoded and name == b"content-encoding"):
            headers.append((name, value))
    return headers


def _with_model(data: bytes, field: str, model_id: str) -> bytes:
    try:
        obj = json.loads(data)
    except ValueError:
        return data
    if isinstance(obj, dict) and field in obj:
        obj[field] = model_id
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return data


async def _events_with_model(chunks: AsyncIterator[bytes], model_id: str) -> AsyncIterator[bytes]:
    """Server-sent events with ``model`` replaced in every JSON ``data:`` line."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            yield b"".join(
                (b"data: " + _with_model(line[5:].strip(), "model", model_id) if line.startswith(b"data:") else line) + b"\n"
                for line in lines
            )
    if pending:
        yield pending


def _is_event_stream(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


async def _body(response: httpx.Response, upstream: str, timeout: float, decoded: bool) -> AsyncIterator[bytes]:
    """The body as it arrives. A failure midway cannot change the status any more: an
    event stream gets an error event, any other body is cut off (the client sees it
    incomplete, not silently short)."""
    chunks = response.aiter_bytes() if decoded else response.aiter_raw()
    try:
        async for chunk in chunks:
            yield chunk
    except httpx.TransportError as exc:
        log.warning("upstream %s: %s while relaying", upstream, type(exc).__name__)
        if not _is_event_stream(response):
            raise
        error = upstream_timeout(upstream, timeout) if isinstance(exc, httpx.TimeoutException) else OpenAIError(
            502, f"The upstream API '{upstream}' broke off the answer.", code="upstream_unreachable"
        )
        yield b"data: " + json.dumps(error.body()).encode() + b"\n\n"
    finally:
        await response.aclose()


async def relay(
    response: httpx.Response,
    upstream: str,
    timeout: float,
    *,
    rename: tuple[str, str] | None = None,
) -> Relayed:
    """Relay ``response``; ``rename`` = (field, model id) puts our alias back in place of
    the upstream's model id (``model`` of completions and chunks, ``id`` of a model)."""
    decoded = rename is not None
    headers = response_headers(response, decoded=decoded)
    length = response.headers.get("content-length")
    whole = (length is not None and length.isdigit() and int(length) <= WHOLE_BODY_MAX) and not _is_event_stream(
        response
    )
    if whole:
        try:
            content = await response.aread() if decoded else b"".join([c async for c in response.aiter_raw()])
        except httpx.TimeoutException:
            raise upstream_timeout(upstream, timeout) from None
        except httpx.TransportError:
            raise OpenAIError(502, f"The upstream API '{upstream}' broke off the answer.", code="upstream_unreachable") from None
        finally:
            await response.aclose()
        if rename is not None and response.status_code < 400:
            content = _with_model(content, *rename)
        return Relayed(response.status_code, headers, content=content)
    chunks = _body(response, upstream, timeout, decoded)
    if rename is not None and _is_event_stream(response):
        chunks = _events_with_model(chunks, rename[1])
    return Relayed(response.status_code, headers, chunks=chunks, close=response.aclose)
