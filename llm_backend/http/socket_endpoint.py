"""What the service's WebSocket endpoints share (the Responses WebSocket mode, the Realtime
API): ASGI middleware that takes the WebSockets of one path and passes everything else on,
the one that answers a WebSocket no endpoint took (``NoSocket``), the receive loop of a
connection (``receive_frames``: its lifetime, one frame handled after the other), and a
client event read from its frame (``client_event``: the parser of request bodies, off the
event loop for a large frame)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..auth import Authenticator
from ..errors import invalid_client_event, unknown_url
from ..json.text import MAX_VALUES, loads
from ..serving.services import Services
from .middleware import Observer
from .rendering import error_response


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


class NoSocket:
    """Inside every WebSocket endpoint: a handshake none of them took has no WebSocket at its
    path, and is answered as that URL over HTTP without a route is, 404 ``unknown_url``, not
    with Starlette's bare 403, which a client reads as its key refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        await WebSocket(scope, receive, send).send_denial_response(error_response(unknown_url()))


async def receive_frames(websocket: WebSocket, seconds: float, handle: Callable[[str | bytes], Awaitable[None]]) -> bool:
    """Hand each frame the client sends to ``handle``, one after the other (a client cannot
    queue work past what ``handle`` bounds), until it leaves (False) or the connection's
    ``seconds`` are up (True: the caller tells it so and closes). A frame's size and the time
    its fragments take are uvicorn's to bound (``ws_max_size``, ``socket_deadline.py``)."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return False
                await handle(message.get("text") or message.get("bytes") or "")
    except WebSocketDisconnect:
        return False
    except TimeoutError:
        return True


def client_event(frame: str | bytes, max_values: int = MAX_VALUES) -> Any:
    """The JSON a client event's frame holds, or the error it gets (not JSON: ``invalid_event``;
    nested too deep, or more than ``max_values`` values and keys: ``invalid_body``). Sized
    by the frame: run it through ``off_loop.py`` for a frame above ``LARGE_BODY``."""
    try:  # its depth and values scanned before any parser keeps state (json/scan.py)
        return loads(frame.encode() if isinstance(frame, str) else frame, max_values)
    except ValueError:
        raise invalid_client_event() from None

