"""The short way to the controller for operations whose whole input is a JSON body.

Connexion's request pipeline (routing, security, validation, context, parameter parsing)
costs about 1 ms of CPU per request (measured on the 2-core development VM: a bare Connexion
app relaying one request, 2.0-2.2 ms; uvicorn and aiohttp alone, 1.0 ms), as much again as
everything else a proxied chat completion costs. For a POST whose operation takes nothing
but a JSON body (chat completions, completions, embeddings, ...), this lane does what that
pipeline would, with the same parts: the route from the spec, the key checked by the same
``Authenticator``, the body checked by the same compiled schema; then it calls the very
controller Connexion would call. Everything the operation means stays in the controller.

A request the lane cannot prove valid (no or a wrong key, a body that is not JSON or that
the schema refuses, a client gone before its body arrived) goes to Connexion with its body
replayed: every error has one implementation, there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import Authenticator
from ..errors import OpenAIError, answered
from . import context
from .body import parse_json, read_body
from .middleware import HttpMiddleware
from .rendering import error_response

# (method, path) -> (operationId, controller, whether a parsed body is valid for it)
Routes = dict[tuple[str, str], tuple[str, Callable, Callable[[Any], bool]]]


class FastLane(HttpMiddleware):
    """See the module's docstring."""

    def __init__(self, app: ASGIApp, *, routes: Routes, authenticator: Authenticator) -> None:
        super().__init__(app)
        self.routes = routes
        self.authenticator = authenticator

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope["method"], scope["path"]))
        if route is None:
            await self.app(scope, receive, send)
            return
        body, receive = await read_body(receive)
        request = None if body is None else await self._checked(scope, body, route[2])
        if request is None:
            await self.app(scope, receive, send)
            return
        context.record().operation_id = route[0]
        try:
            response = await route[1](body=request)
        except Exception as exc:  # answered and logged as Connexion's error handlers do
            response = error_response(answered(exc))
        await response(scope, receive, send)

    async def _checked(self, scope: Scope, body: bytes, is_valid: Callable[[Any], bool]) -> dict | None:
        """The parsed body if the request passes the pipeline's checks; else None."""
        headers = dict(scope["headers"])
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            return None
        try:
            request = parse_json(body)
        except OpenAIError:
            return None
        if not isinstance(request, dict) or not is_valid(request):
            return None
        try:
            principal = await self.authenticator.authenticate(headers.get(b"authorization", b"").decode("latin-1") or None)
        except OpenAIError:
            return None
        context.authenticated(principal)
        return request
