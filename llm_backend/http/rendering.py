"""Turn what a controller or backend answered into an HTTP response: a JSON object, a
server-sent event stream, an upstream's relayed answer, or an error. Every error response
of the service is built by ``error_response``."""

from __future__ import annotations

import json
from typing import Any, cast

import anyio
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from ..backends.base import Answer, Relayed, Stream
from ..errors import OpenAIError
from .sse import event_stream


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type="application/json")


def error_response(error: OpenAIError) -> Response:
    """The one renderer of errors: OpenAI's body, its status, its headers (``retry-after``)."""
    response = json_response(error.body(), error.status)
    response.headers.update(error.headers)
    return response


class RelayStream(StreamingResponse):
    """An upstream's body to the client chunk by chunk, as it arrives. However the relay
    ends (done, failed, client gone), the upstream request is closed at once."""

    def __init__(self, answer: Relayed) -> None:
        # A relayed answer without its ``content`` has its ``chunks`` (relay_response).
        super().__init__(cast(Stream[bytes], answer.chunks), status_code=answer.status)
        self.raw_headers = list(answer.headers)
        self._close = answer.close

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            if self._close is not None:
                # Shielded: on client disconnect this scope is already cancelled.
                with anyio.CancelScope(shield=True):
                    await self._close()


def relay_response(answer: Relayed) -> Response:
    """The upstream's status, headers and bytes, unchanged."""
    if answer.content is None:
        return RelayStream(answer)
    response = Response(answer.content, status_code=answer.status)
    response.raw_headers = [*answer.headers, (b"content-length", str(len(answer.content)).encode())]
    return response


def text_response(text: str, media_type: str) -> Response:
    return Response(text.encode(), media_type=f"{media_type}; charset=utf-8")


def bytes_stream(chunks: Stream[bytes], media_type: str) -> Response:
    """Bytes as they come (chunked); however the stream ends, its source is closed."""
    return RelayStream(Relayed(200, [(b"content-type", media_type.encode())], chunks=chunks, close=chunks.aclose))


def answer_response(answer: Answer) -> Response:
    """A JSON object, a server-sent event stream of chunks, or an upstream's relayed answer."""
    if isinstance(answer, dict):
        return json_response(answer)
    if isinstance(answer, Relayed):
        return relay_response(answer)
    return event_stream(answer)
