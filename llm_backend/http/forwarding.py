"""Requests answered by an upstream API verbatim: method, path, query, body (JSON or
multipart, as bytes) and the relevant headers go to the upstream; its status, headers and
body come back unbuffered. This makes the service a drop-in for the whole OpenAI API.

These rules decide what is forwarded, all here:
- an operation no controller serves goes to the default upstream (``UnservedOperations``);
- a served operation whose body names a model (``routed_by_model``) is served here when
  the model's backend serves the operation itself (every local backend does), and forwarded
  to the model's upstream otherwise. ``spec/adapter.py`` applies it to every served
  operation with a JSON body, so an operation newly served here for local models keeps
  working for upstream ones;
- an operation on a stored object that may be the upstream's (``found_here_or_upstream``:
  a response or conversation created through a forwarded request) goes to the default
  upstream when the object is not found here.
A pure gateway (no local models) forwards every operation of the stateful families
(``LOCAL_STATE_TAGS``) as unserved: it keeps no state of its own for upstream models.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..backends.base import Backend, Serving, StreamedBody
from ..errors import OpenAIError
from . import context
from .body import Spool
from .rendering import relay_response


def _api_path(scope: Scope) -> str:
    """The path below the API's base (``/v1``): the upstream's base URL has its own."""
    base_path = scope.get("extensions", {}).get("connexion_routing", {}).get("api_base_path")
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    if base_path is None:  # not routed by Connexion (the fast lane): the first segment is the base
        base_path = "/" + scope["path"].split("/", 2)[1]
    if not path.startswith(base_path):
        path = scope["path"]
    return path[len(base_path) :]


async def forward(backend: Backend, scope: Scope, content: bytes | StreamedBody | None) -> Response:
    answer = await backend.forward(scope["method"], _api_path(scope), scope.get("query_string", b""), scope["headers"], content)
    return relay_response(answer)


async def _forward_served(backend: Backend, body: object) -> Response:
    """The request being served, to ``backend``: its validated JSON body re-encoded (the
    bytes were read by validation), no body for an operation without one."""
    content = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else None
    return await forward(backend, context.scope(), content)


class Passthrough:
    """An ASGI app that forwards the request to ``upstream`` and relays the answer."""

    def __init__(self, upstream: Backend) -> None:
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Read whole (the body limit middleware bounds it) so that a retry can send it
        # again; a large body (an upload of up to 512 MB) into a temporary file, sent on
        # from there, never whole in memory.
        spool = await Spool.read(receive)
        if spool is None:
            return  # the client left
        try:
            small = spool.in_memory()
            body = small if small is not None else StreamedBody(spool.size, spool.chunks)
            response = await forward(self.upstream, scope, body)
            await response(scope, receive, send)
        finally:
            spool.close()


class UnservedOperations:
    """Connexion middleware (after routing and security, before validation): an operation
    we do not serve goes to ``forward``, the default upstream, with its request untouched -
    the body is not parsed, so a multipart upload passes as the bytes the client sent.
    Without an upstream this middleware is not installed and the resolver's fallback
    answers 404 (an unknown URL, as OpenAI answers)."""

    def __init__(self, app: ASGIApp, unserved: frozenset[str], forward: ASGIApp) -> None:
        self.app = app
        self.unserved = unserved
        self.forward = forward

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routing = scope.get("extensions", {}).get("connexion_routing", {})
            if routing.get("operation_id") in self.unserved:
                await self.forward(scope, receive, send)
                return
        await self.app(scope, receive, send)


Controller = Callable[..., Awaitable[Response]]


def routed_by_model(operation_id: str, controller: Controller) -> Controller:
    """``controller`` for requests whose body names a model that the model's backend serves
    itself (every local one); a request for a model of an upstream API that does not is
    forwarded to that upstream, its validated body re-encoded."""

    @functools.wraps(controller)
    async def served(*args, **kwargs) -> Response:
        body = kwargs.get("body")
        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str):
            context.record().model = model
            backend = context.current().registry.backend_for(model)
            if backend.serving(operation_id) is Serving.FORWARDED:
                return await _forward_served(backend, body)
        return await controller(*args, **kwargs)

    return served


# Families whose objects this service keeps for local models; a pure gateway forwards them.
LOCAL_STATE_TAGS = frozenset({"Files", "Vector stores", "Responses", "Conversations"})
# Of those, the ones whose objects may live upstream too (created through a forwarded request).
SHARED_STATE_TAGS = frozenset({"Responses", "Conversations"})


def found_here_or_upstream(controller: Controller) -> Controller:
    """``controller``; when the object it addresses is not found here (404 ``not_found``)
    and a default upstream is configured, the request goes there instead."""

    @functools.wraps(controller)
    async def served(*args, **kwargs) -> Response:
        try:
            return await controller(*args, **kwargs)
        except OpenAIError as error:
            upstream = context.current().registry.default_upstream
            if upstream is None or error.status != 404 or error.code != "not_found":
                raise
            return await _forward_served(upstream, kwargs.get("body"))

    return served
