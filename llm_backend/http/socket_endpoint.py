"""What the service's WebSocket endpoints share (the Responses WebSocket mode, the Realtime
API): ASGI middleware that takes the WebSockets of one path and passes everything else on."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import Authenticator
from ..serving.services import Services
from .middleware import Observer


class SocketEndpoint:
    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        services: Services,
        authenticator: Authenticator,
        check_event: Any,
        observer: Observer | None = None,
    ) -> None:
        self.app = app
        self.path = path
        self.services = services
        self.authenticator = authenticator
        self.check_event = check_event  # a client event checked by the spec
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        await self.serve(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
