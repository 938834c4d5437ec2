"""OpenAI's Realtime API at ``/v1/realtime``, over a WebSocket (issue #35, docs/REALTIME.md).

The handshake is checked as every request is: the edge's rules first (``http/edge.py``: a
foreign ``Host``, another site's ``Origin``), then the key by the same ``Authenticator``
(a refused key gets the HTTP answer, 401 and OpenAI's error body, and no socket). The
caller's tenant holds for the whole connection. The first event is ``session.created``.

Two kinds of session: a conversation (``?model=<chat model>``, ``serving/realtime/
conversation.py``) and a transcription (``?intent=transcription``, ``serving/realtime/
transcription.py``).

Each client event is checked by its schema in the OpenAI document (``spec/realtime_events.
py``); a mistake is an ``error`` event (``RealtimeServerEventError``, carrying the client's
``event_id``) and the connection stays open. Frames are bounded by uvicorn's
``ws_max_size`` (``max_body_bytes``); events are handled one after the other, so a client
cannot queue work beyond the session's own bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import errors
from ..auth import Principal
from ..client_secrets import PREFIX, Claims
from ..errors import OpenAIError, answered
from ..json_depth import MAX_JSON_DEPTH, too_deep
from ..serving.realtime.events import event_id
from . import context
from .middleware import CLIENT_CLOSED_REQUEST, Exchange
from .rendering import error_response
from .socket_endpoint import SocketEndpoint

if TYPE_CHECKING:
    from ..serving.realtime.sessions import Session

log = logging.getLogger(__name__)

Json = dict[str, Any]
KEY_PROTOCOL = "openai-insecure-api-key."  # OpenAI's browser clients' way to send a key


def error_event(error: OpenAIError, client_event_id: Any = None) -> Json:
    """``RealtimeServerEventError``: OpenAI's error body, with the client event's id."""
    body = error.body()["error"]
    body["event_id"] = client_event_id if isinstance(client_event_id, str) else None
    return {"type": "error", "event_id": event_id(), "error": body}


class RealtimeSocket(SocketEndpoint):
    """``/v1/realtime``: a caller (a key, or an ephemeral secret made by a key still valid)
    and its session."""

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        protocols = [name.strip() for name in websocket.headers.get("sec-websocket-protocol", "").split(",") if name.strip()]
        authorization = websocket.headers.get("authorization")
        for name in protocols:  # a browser cannot set headers: its key comes as a subprotocol
            if name.startswith(KEY_PROTOCOL):
                authorization = "Bearer " + name.removeprefix(KEY_PROTOCOL)
        try:
            principal, claims = await self._caller(authorization)
        except OpenAIError as error:
            await websocket.send_denial_response(error_response(error))
            return
        context.authenticated(principal)
        await websocket.accept(subprotocol="realtime" if "realtime" in protocols else None)
        await Connection(self, websocket, authorization, claims).serve()

    async def _caller(self, authorization: str | None) -> tuple[Principal, Claims | None]:
        """Who is calling: a key, or an ephemeral client secret made by a key still valid
        (and the session it was made for)."""
        token = (authorization or "").partition(" ")[2].strip()
        if not token.startswith(PREFIX):
            return await self.authenticator.authenticate(authorization), None
        claims = self.services.client_secrets.read(token)
        if claims is None:
            raise errors.invalid_key()
        return await self.secret_holder(claims), claims

    async def secret_holder(self, claims: Claims) -> Principal:
        """The key that made a secret, if it is still valid, counted by the rate limits."""
        principal = await self.authenticator.by_digest(claims.creator)
        if principal is None:
            raise errors.invalid_key()
        return await self.authenticator.admitted(principal)


class Connection:
    def __init__(self, socket: RealtimeSocket, websocket: WebSocket, authorization: str | None, claims: Claims | None) -> None:
        self.socket = socket
        self.websocket = websocket
        self.authorization = authorization
        self.claims = claims
        self.sending = asyncio.Lock()  # a session's tasks (turns, responses) send side by side

    async def _still_allowed(self) -> Principal:
        """The caller, checked again: its key (or the key that made its secret: a session
        outlives its secret's expiry, not its key's revocation) still valid, and counted."""
        if self.claims is None:
            return await self.socket.authenticator.authenticate(self.authorization)
        return await self.socket.secret_holder(self.claims)

    @contextlib.asynccontextmanager
    async def respond(self, model: str) -> AsyncIterator[tuple[list[Json], Callable[[int], None]]]:
        """The session's ``Gate``: each response an ``Exchange`` of its own, as an HTTP
        request is (metrics, usage, access log), its key checked and counted again."""
        exchange = Exchange(self.websocket.scope, self.socket.services, self.socket.observer, "WEBSOCKET")
        exchange.record.operation_id, exchange.record.model = "createRealtimeResponse", model
        final = [CLIENT_CLOSED_REQUEST]
        try:
            try:
                principal = await self._still_allowed()
            except OpenAIError as error:
                final[0] = error.status
                raise
            context.authenticated(principal)
            yield list(exchange.record.rate_limits), lambda status: final.__setitem__(0, status)
        finally:
            exchange.end(final[0])

    async def send(self, event: Json) -> None:
        async with self.sending:
            await self.websocket.send_text(json.dumps(event, separators=(",", ":"), ensure_ascii=False))

    async def _refuse(self, error: OpenAIError) -> None:
        await self.send(error_event(error))
        await self.websocket.close(1008)

    def _session(self) -> "Session":
        """The session the secret was made for, or the one the query asks for."""
        from ..serving.realtime.sessions import session_for  # numpy: loaded on first use

        if self.claims is not None:
            config = self.claims.session
            kind = config.get("type", "realtime")
            return session_for(self.socket.services, self.send, self, kind, config.get("model"), config)
        query = parse_qs(self.websocket.scope.get("query_string", b"").decode())
        kind = "transcription" if query.get("intent") == ["transcription"] else "realtime"
        return session_for(self.socket.services, self.send, self, kind, (query.get("model") or [""])[0])

    async def serve(self) -> None:
        try:
            session = self._session()
        except OpenAIError as error:
            await self._refuse(error)
            return
        await self.send({"type": "session.created", "event_id": event_id(), "session": session.to_openai()})
        try:
            async with asyncio.timeout(self.socket.services.settings.realtime_session_seconds):
                while True:
                    message = await self.websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    await self._handle(session, message.get("text") or message.get("bytes") or "")
        except WebSocketDisconnect:
            return
        except TimeoutError:
            seconds = self.socket.services.settings.realtime_session_seconds
            expired = OpenAIError(400, f"Your session hit the maximum duration of {seconds:g} seconds.", code="session_expired")
            await session.close()
            await self.send(error_event(expired))
            await self.websocket.close(1000)
        finally:
            await session.close()

    async def _handle(self, session: "Session", frame: str | bytes) -> None:
        try:
            event = json.loads(frame)
        except (ValueError, RecursionError):
            await self.send(error_event(errors.invalid_client_event()))
            return
        client_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            if too_deep(event):
                raise errors.too_deep(MAX_JSON_DEPTH)
            event = self.socket.check_event(event)
            kind = event["type"]
            if kind == "session.update":
                session.update(event["session"])
                await self.send({"type": "session.updated", "event_id": event_id(), "session": session.to_openai()})
            elif not await session.input.handle(kind, event):
                await session.handle(kind, event)
        except Exception as exc:
            error = answered(exc)
            if error.status >= 500:
                log.exception("realtime event failed")
            await self.send(error_event(error, client_id))
