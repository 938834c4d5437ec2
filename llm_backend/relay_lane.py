"""The short way through for the hot operations of upstream models.

A chat completion, completion or embedding for a model an upstream API serves is checked
(key, body against the operation's schema in the spec) and relayed without Connexion's
request pipeline. That pipeline costs about 1 ms of CPU per request (measured on the
2-core development VM: a bare Connexion app relaying one request, 2.0-2.2 ms; uvicorn and
aiohttp alone, 1.0 ms), as much again as everything else a proxied request costs.

Only the plain case takes the lane: a JSON body the schema accepts, for an upstream model,
from a caller with a valid key, with nothing to store. Anything else - a local model, no or
a wrong key, a body the schema refuses, ``store`` or ``metadata`` - goes the normal way with
its body replayed, so every error and every other behaviour has one implementation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Authenticator
from .backends.registry import ModelRegistry
from .backends.upstream.backend import UpstreamBackend
from .errors import OpenAIError, answered
from .middleware import HttpMiddleware
from .responses import answer_response, json_response

# Path -> (operationId, the upstream backend's method).
OPERATIONS = {
    "/v1/chat/completions": ("createChatCompletion", "chat_completion"),
    "/v1/completions": ("createCompletion", "completion"),
    "/v1/embeddings": ("createEmbedding", "embedding"),
}
Validator = Callable[[Any], bool]


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None if the client left first), and a receive that gives the same
    messages again before any later one."""
    messages: list[Message] = []
    while True:
        messages.append(await receive())
        if messages[-1]["type"] != "http.request":
            body = None
            break
        if not messages[-1].get("more_body"):
            body = b"".join(message.get("body", b"") for message in messages)
            break
    replay = list(messages)

    async def replayed() -> Message:
        return replay.pop(0) if replay else await receive()

    return body, replayed


class RelayLane(HttpMiddleware):
    """See the module's docstring. ``validators`` answer whether a body is valid for an
    operationId (the same compiled schemas the normal way validates with)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: ModelRegistry,
        authenticator: Authenticator,
        validators: dict[str, Validator],
        store_all: bool,
    ) -> None:
        super().__init__(app)
        self.registry = registry
        self.authenticator = authenticator
        self.validators = validators
        self.store_all = store_all

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation = OPERATIONS.get(scope["path"]) if scope["method"] == "POST" else None
        if operation is None or operation[0] not in self.validators:
            await self.app(scope, receive, send)
            return
        body, receive = await _read_body(receive)
        relayed = None if body is None else await self._plain(scope, body, *operation)
        if relayed is None:
            await self.app(scope, receive, send)
            return
        await relayed(scope, receive, send)

    async def _plain(self, scope: Scope, body: bytes, operation_id: str, method: str) -> ASGIApp | None:
        """The relayed answer of a plain request; None for anything else."""
        headers = dict(scope["headers"])
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            return None
        try:
            request = json.loads(body)
        except ValueError:
            return None
        if not isinstance(request, dict) or not isinstance(request.get("model"), str):
            return None
        if request.get("store") or request.get("metadata") is not None or (self.store_all and method == "chat_completion"):
            return None
        backend = self.registry.backend_for_or_none(request["model"])
        if not isinstance(backend, UpstreamBackend) or not self.validators[operation_id](request):
            return None
        try:
            await self.authenticator.authenticate(headers.get(b"authorization", b"").decode("latin-1") or None)
        except OpenAIError:
            return None
        try:
            return answer_response(await getattr(backend, method)(request["model"], request))
        except Exception as exc:  # answered and logged as the normal way's error handlers do
            error = answered(exc)
        response = json_response(error.body(), error.status)
        response.headers.update(error.headers)
        return response
