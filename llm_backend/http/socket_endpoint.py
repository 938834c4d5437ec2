"""What the service's WebSocket endpoints share (the Responses WebSocket mode, the Realtime
API): ASGI middleware that takes the WebSockets of one path and passes everything else on,
and a client event read from its frame (``client_event``: the parser of request bodies,
off the event loop for a large frame)."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import Authenticator
from ..errors import invalid_client_event
from ..json_text import MAX_VALUES, loads
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


def client_event(frame: str | bytes, max_values: int = MAX_VALUES) -> Any:
    """The JSON a client event's frame holds, or the error it gets (not JSON: ``invalid_event``;
    nested too deep, or more than ``max_values`` values and keys: ``invalid_body``). Sized
    by the frame: run it through ``off_loop.py`` for a frame above ``LARGE_BODY``."""
    try:  # its depth and values scanned before any parser keeps state (json_scan.py)
        return loads(frame.encode() if isinstance(frame, str) else frame, max_values)
    except ValueError:
        raise invalid_client_event() from None

