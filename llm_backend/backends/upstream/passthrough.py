"""Verbatim forwarding of the operations we do not serve ourselves (files, images, audio,
batches, responses, ...): method, path, query, body (JSON or multipart, as bytes) and the
relevant headers go to the default upstream; its status, headers and body come back
unbuffered. This makes the service a drop-in for the whole OpenAI API."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from ...responses import relay_response
from .backend import UpstreamBackend


async def _read_body(receive: Receive) -> bytes:
    # Read whole (the body limit middleware bounds it) so that a retry can send it again.
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class Passthrough:
    """An ASGI app that forwards the request to ``upstream`` and relays the answer."""

    def __init__(self, upstream: UpstreamBackend) -> None:
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        base_path = scope.get("extensions", {}).get("connexion_routing", {}).get("api_base_path") or ""
        # The raw path keeps the client's percent-encoding; the upstream's base URL has its /v1.
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if not path.startswith(base_path):
            path = scope["path"]
        path = path[len(base_path) :]
        answer = await self.upstream.forward(
            scope["method"], path, scope.get("query_string", b""), scope["headers"], await _read_body(receive)
        )
        await relay_response(answer)(scope, receive, send)
