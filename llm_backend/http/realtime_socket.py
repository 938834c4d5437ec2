"""OpenAI's Realtime API at ``/v1/realtime``, over a WebSocket (issue #35, docs/REALTIME.md).

The handshake is checked as every request is: the edge's rules first (``http/edge.py``: a
foreign ``Host``, another site's ``Origin``), then the key by the same ``Authenticator``
(a refused key gets the HTTP answer, 401 and OpenAI's error body, and no socket), then the
sessions the key (and an ephemeral secret) already has open on this replica
(``realtime_sessions_per_key``, ``_per_secret``: one more is a 429). The caller's tenant
holds for the whole connection. The first event is ``session.created``, once the models the
session uses are loaded (``serving/realtime/sessions.ready``; one that cannot load: an
``error`` event, and the connection closed).

Two kinds of session: a conversation (``?model=<chat model>``, ``serving/realtime/
conversation.py``) and a transcription (``?intent=transcription``, ``serving/realtime/
transcription.py``).

Each client event is read within bounds, off the event loop when large
(``socket_frames.py``), and checked by its schema in the OpenAI document
(``spec/realtime_events.py``); a mistake is an ``error`` event (``RealtimeServerEventError``,
carrying the client's ``event_id``) and the connection stays open. Frames are bounded by
uvicorn's ``ws_max_size`` (``max_body_bytes``); events are handled one after the other, so
a client cannot queue work beyond the session's own bounds.

Every request a session makes - a response, a turn's transcription - passes the session's
``Gate`` (``Connection.admit``): an ``Exchange`` of its own, as an HTTP request is (metrics,
usage, access log), the key checked and counted again, and its project's rules applied
(per-model rate limits, hosted tool permissions: ``project_limits.admit_model``). A key
revoked meanwhile ends the session (``invalid_api_key``, closed). A ``session.update``
offering a hosted tool its project turned off (``mcp``) is refused before it changes
anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import errors
from ..auth import Principal
from ..auth.client_secrets import PREFIX, Claims
from ..errors import OpenAIError, answered
from ..json.types import Json
from ..serving.admin import hosted_tools
from ..serving.realtime.events import error_event, event_id
from ..serving.realtime.threads import give_back_memory, off_loop
from ..serving.services import required
from ..settings import Settings
from . import context
from .middleware import CLIENT_CLOSED_REQUEST, Exchange
from .project_limits import admit_model
from .rendering import error_response
from .socket_endpoint import SocketEndpoint, receive_frames
from .socket_frames import RefusedEvent, read_event

if TYPE_CHECKING:
    from ..serving.realtime.sessions import Session

log = logging.getLogger(__name__)

KEY_PROTOCOL = "openai-insecure-api-key."  # OpenAI's browser clients' way to send a key


class OpenSessions:
    """The sessions open on this replica, per key (its tenant) and per client secret."""

    def __init__(self, settings: Settings) -> None:
        self.limits = {"key": settings.realtime_sessions_per_key, "secret": settings.realtime_sessions_per_secret}
        self.open: Counter[tuple[str, str]] = Counter()

    @contextlib.contextmanager
    def held(self, owner: str, secret: str | None) -> Iterator[None]:
        holders = [("key", owner)] + ([("secret", secret)] if secret is not None else [])
        for holder in holders:
            limit = self.limits[holder[0]]
            if self.open[holder] >= limit:
                raise errors.too_many_sessions(holder[0], limit)
        self.open.update(holders)
        try:
            yield
        finally:
            self.open.subtract(holders)
            for holder in holders:
                if self.open[holder] <= 0:
                    del self.open[holder]


class RealtimeSocket(SocketEndpoint):
    """``/v1/realtime``: a caller (a key, or an ephemeral secret made by a key still valid)
    and its session."""

    def __init__(self, app: ASGIApp, **endpoint: Any) -> None:
        super().__init__(app, **endpoint)
        self.sessions = OpenSessions(self.services.settings)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        protocols = [name.strip() for name in websocket.headers.get("sec-websocket-protocol", "").split(",") if name.strip()]
        authorization = websocket.headers.get("authorization")
        for name in protocols:  # a browser cannot set headers: its key comes as a subprotocol
            if name.startswith(KEY_PROTOCOL):
                authorization = "Bearer " + name.removeprefix(KEY_PROTOCOL)
        with contextlib.ExitStack() as held:
            try:
                principal, claims = await self._caller(authorization)
                held.enter_context(self.sessions.held(principal.owner, claims.secret_id if claims else None))
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
        claims = required(self.services.client_secrets, "client secrets").read(token)
        if claims is None:
            raise errors.invalid_key()
        return await self.secret_holder(claims), claims

    async def secret_holder(self, claims: Claims) -> Principal:
        """The key that made a secret, if it is still valid, counted by the rate limits."""
        principal = await self.authenticator.by_digest(claims.creator)
        if principal is None:
            raise errors.invalid_key()
        return await self.authenticator.admitted(principal)


class Admission:
    """One request of a session, admitted: its ``Exchange`` told how it ended."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.rate_limits = list(exchange.record.rate_limits)
        self.status = CLIENT_CLOSED_REQUEST

    def finished(self, status: int, usage: Json | None = None) -> None:
        self.status = status
        if usage:  # counted as a Responses WebSocket's response is (when no engine counted it)
            self.exchange.event({"response": {"usage": usage}})


class Connection:
    def __init__(self, socket: RealtimeSocket, websocket: WebSocket, authorization: str | None, claims: Claims | None) -> None:
        self.socket = socket
        self.websocket = websocket
        self.authorization = authorization
        self.claims = claims
        self.sending = asyncio.Lock()  # a session's tasks (turns, responses) send side by side
        self.closed = False

    async def _still_allowed(self) -> Principal:
        """The caller, checked again: its key (or the key that made its secret: a session
        outlives its secret's expiry, not its key's revocation) still valid, and counted."""
        if self.claims is None:
            return await self.socket.authenticator.authenticate(self.authorization)
        return await self.socket.secret_holder(self.claims)

    @contextlib.asynccontextmanager
    async def admit(
        self, operation: str, model: str, body: Json | None = None, prefix: str = "", audio_bytes: int = 0
    ) -> AsyncIterator[Admission]:
        """The session's ``Gate``: each request an ``Exchange`` of its own, as an HTTP
        request is (metrics, usage, access log), its key checked and counted again, its
        project's rules applied (per-model limits, ``audio_bytes`` of a turn as an upload's;
        the hosted tools of ``body``'s tools)."""
        exchange = Exchange(self.websocket.scope, self.socket.services, self.socket.observer, "WEBSOCKET")
        exchange.record.operation_id, exchange.record.model = operation, model
        status = CLIENT_CLOSED_REQUEST
        try:
            try:
                principal = await self._still_allowed()
                context.authenticated(principal)
                # Its project's per-model limits and hosted tools, as an HTTP request's.
                await admit_model(model, audio_bytes=audio_bytes, body=body, prefix=prefix)
            except OpenAIError as error:
                status = error.status
                if error.status == 401:  # its key revoked: the session ends with it
                    await self.end(error)
                raise
            admission = Admission(exchange)
            yield admission
            status = admission.status
        finally:
            exchange.end(status)

    async def send(self, event: Json) -> None:
        async with self.sending:
            if not self.closed:
                try:
                    await self.websocket.send_text(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
                except WebSocketDisconnect:
                    # The client left while this was on its way: nothing more goes out, and
                    # the session ends as its receiving loop finds the connection gone. Raised
                    # into a response running beside it, it was logged as our own error.
                    self.closed = True

    async def end(self, error: OpenAIError, code: int = 1008) -> None:
        """Close the connection with a last ``error`` event; nothing is sent after it."""
        await self.send(error_event(error))
        async with self.sending:
            if not self.closed:
                self.closed = True
                await self.websocket.close(code)

    def _session(self) -> "Session":
        """The session the secret was made for, or the one the query asks for."""
        from urllib.parse import parse_qs

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
            await self._run()
        except WebSocketDisconnect:
            pass  # the client left while something was on its way to it (its models loading, say)

    async def _run(self) -> None:
        from ..serving.realtime.sessions import ready

        try:
            # Beside the loop: the first session of a process imports the VAD (onnxruntime)
            # and loads its model, about half a second.
            session = await off_loop(self._session)
        except OpenAIError as error:
            await self.end(error)
            return
        try:
            await ready(self.socket.services, session)  # its models loaded before session.created
        except OpenAIError as error:
            await session.close()
            await self.end(error)
            return
        seconds = self.socket.services.settings.realtime_session_seconds
        try:
            await self.send({"type": "session.created", "event_id": event_id(), "session": session.to_openai()})
            if await receive_frames(self.websocket, seconds, functools.partial(self._handle, session)):
                await session.close()
                await self.end(errors.session_expired(seconds), 1000)
        finally:
            await session.close()
            del session
            await give_back_memory()

    async def _handle(self, session: "Session", frame: str | bytes) -> None:
        settings = self.socket.services.settings
        client_id = None
        try:
            event = await read_event(frame, self.socket.check_event, settings.realtime_event_values, off_loop)
            client_id = event.get("event_id")
            kind = event["type"]
            if kind == "session.update":
                # The project's hosted tools (mcp) before anything of the session changes.
                await hosted_tools.check(self.socket.services, context.caller(), event["session"], "session.")
                session.update(event["session"])
                await self.send({"type": "session.updated", "event_id": event_id(), "session": session.to_openai()})
            elif not await session.input.handle(kind, event):
                await session.handle(kind, event)
        except RefusedEvent as refused:
            await self.send(error_event(refused.error, refused.client_event_id))
        except Exception as exc:
            error = answered(exc)
            if error.status >= 500:
                log.exception("realtime event failed")
            await self.send(error_event(error, client_id))
