"""The short way to the controller for operations whose whole input is a JSON body.

Connexion's request pipeline (routing, security, validation, context, parameter parsing)
costs about 1 ms of CPU per request (measured on the 2-core development VM: a bare Connexion
app relaying one request, 2.0-2.2 ms; uvicorn and aiohttp alone, 1.0 ms), as much again as
everything else a proxied chat completion costs. Most of it comes after the key is checked:
request validation, the context and the parameter decorators. So the lane sits right after
Connexion's routing and security (the operation is the one Connexion routed to, the key
was checked and counted by Connexion's security with the ``Authenticator``, the admin
operations' rule included): for a POST whose operation takes nothing but a JSON body (chat
completions, completions, embeddings, ...) it reads the body, checks it as the body
validator does (``spec/validation.checked_json``: the same parser, its bounds and its
refusal of a key twice in an object, compiled schema and unknown-field rule, off the event
loop for a large body) and calls the very controller
Connexion would call. Measured after the move (a proxied chat with a key, the best of five
rounds of 1000): in-process 0.33-0.47 ms of CPU behind the lane, 0.67-0.86 ms through the
whole pipeline, 0.49 ms with the lane in front of the security as it was; the live server
0.65-0.87 ms against 0.90-1.05 ms without the lane.

A body the check refuses gets its error from the same function the body validator raises it
from, rendered by Connexion's error handlers (the lane is inside them). A request without a
JSON body (another content type, none at all) continues into Connexion, body replayed.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from . import context
from .body import read_body
from .middleware import HttpMiddleware

# The operationId (as Connexion's routing tells it) -> its controller and a coroutine
# function turning the raw body into the checked one (raising the body validator's error).
Routes = dict[str, tuple[Callable, Callable]]
ROUTING = "connexion_routing"


class FastLane(HttpMiddleware):
    """See the module's docstring. Added after Connexion's security (``BEFORE_VALIDATION``)."""

    def __init__(self, app: ASGIApp, *, routes: Routes) -> None:
        super().__init__(app)
        self.routes = routes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope.get("extensions", {}).get(ROUTING, {}).get("operation_id"))
        headers = dict(scope["headers"])
        if route is None or not headers.get(b"content-type", b"").startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        body, receive = await read_body(receive)
        if body is None or not body.strip():  # gone, or no body: Connexion's rules for that
            await self.app(scope, receive, send)
            return
        controller, checked = route
        context.record().raw_body = body  # held by this frame anyway, until the answer is sent
        response = await controller(body=await checked(body))
        await response(scope, receive, send)
