"""A WebSocket handshake refused with an HTTP answer is answered, not failed.

The service refuses a handshake as OpenAI does, with an HTTP answer and an OpenAI error (a
wrong key's 401, a spent limit's 429: the ASGI denial response). uvicorn's websockets-sansio
protocol writes that answer and closes the connection, but leaves its handshake unfinished
in its own books, so when the app returns it logs "ASGI callable returned without completing
handshake." at level error: one error line per client with a wrong key, where a client's
mistake must never be logged as an error (uvicorn 0.54; Kludex/uvicorn#3138, open, sets the
flag as uvicorn's wsproto protocol already does). This protocol sets it once the answer's
last byte is written, as that change does; drop it when uvicorn has the change.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class DenialAnswered(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, its handshake finished by a denial response."""

    async def send(self, message) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True
