"""ASGI middleware for what every request shares: a request id with an access log line,
the body size limit, and cancelling the work of a client that hung up.

WebSockets pass the same edge: their handshake is a request (an id, a line, and an
``Origin`` check, since CORS does not apply to WebSockets), and each response a socket
answers is an ``Exchange`` like an HTTP request's, for the metrics and the access log."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, cast

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import errors, off_loop
from . import context, project_limits
from .body import TooLarge, read_body, spool_body
from .edge import cross_site_origin, foreign_host
from .rendering import error_response

access_log = logging.getLogger("llm_backend.access")
# Logged for a request whose client left before its answer started (nginx's code for it).
CLIENT_CLOSED_REQUEST = 499
CLIENT_GONE = "llm_backend.client_gone"
# The ASGI messages that start an answer: an HTTP response, a WebSocket accepted (101) or
# refused at its handshake (an HTTP answer instead, or a bare close: uvicorn answers 403).
_STARTS = {"http.response.start", "websocket.http.response.start", "websocket.accept", "websocket.close"}


def final_status(scope: Scope, status: int) -> int:
    """The status a request ended with, for logs and metrics: 499 when no answer started
    because the client had left (``CancelOnDisconnect``), not the 500 nobody received."""
    return CLIENT_CLOSED_REQUEST if status == 500 and scope.get(CLIENT_GONE) else status


class HttpMiddleware:
    """ASGI middleware for HTTP requests; anything else (lifespan) passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class Observation(Protocol):
    """One request as an observer (``http/metrics.RequestObservation``) follows it."""

    def sent(self, message: Message) -> None: ...

    def event(self, event: dict) -> None: ...

    def finished(self, status: int) -> None: ...


class Observer(Protocol):
    def begin(self, record: context.Record) -> Observation: ...


class Exchange:
    """One request and its answer as the edge follows them: the request's ``context``
    opened with the app's services, what the ``observer`` (the metrics) sees of it, and
    its access log line when it ends. An HTTP request is one; so is each response a
    WebSocket answers (``method`` ``WEBSOCKET``), in the request id of its socket."""

    def __init__(self, scope: Scope, services: context.Services | None, observer: Observer | None, method: str) -> None:
        self.scope = scope
        self.method = method
        self.record = context.enter(scope, services)
        self.observation = observer.begin(self.record) if observer is not None else None
        self.started = time.perf_counter()

    def sent(self, message: Message) -> None:
        if self.observation is not None:
            self.observation.sent(message)

    def event(self, event: dict) -> None:
        """An event of a streamed answer that left as a WebSocket frame."""
        if self.observation is not None:
            self.observation.event(event)

    def end(self, status: int) -> None:
        status = final_status(self.scope, status)
        if self.observation is not None:
            self.observation.finished(status)
        project_limits.settle(self.record)  # its spend hold, now that its usage is counted
        access_log.info(
            "request",
            extra={
                "method": self.method,
                "path": self.scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
            },
        )


class RequestContext:
    """Gives each request an id (``x-request-id``, as OpenAI does) and logs one line for it;
    opens the request's ``context`` with the app's services; adds the rate-limit headers the
    request earned; and shows the answer to the ``observer`` (the metrics) on its way out -
    one wrapper of ``send`` for all of it.

    A WebSocket handshake gets the same (the id and headers on its 101, a line when the
    socket closes); the metrics observe the responses the socket answers, one by one.

    Before anything else, the edge's rules (``http/edge.py``): a foreign ``Host`` and a
    cross-site ``Origin`` are refused with 403 (a WebSocket before it is accepted)."""

    def __init__(
        self,
        app: ASGIApp,
        services: context.Services | None = None,
        observer: Observer | None = None,
        allowed_origins: Sequence[str] = (),
        allowed_hosts: Sequence[str] = (),
        keyless: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.app = app
        self.services = services
        self.observer = observer
        self.allowed_origins = list(allowed_origins)
        self.allowed_hosts = list(allowed_hosts)
        self.keyless = keyless

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = "req_" + uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        websocket = scope["type"] == "websocket"
        exchange = Exchange(scope, self.services, None if websocket else self.observer, scope.get("method", "GET"))
        record = exchange.record
        status: int | None = None  # until the answer starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if status is None and message["type"] in _STARTS:
                status = {"websocket.accept": 101, "websocket.close": 403}.get(message["type"]) or message["status"]
                if message["type"] != "websocket.close":
                    message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode()), *record.headers]
            exchange.sent(message)
            await send(message)

        try:
            refused = await self._refused(scope)
            if refused is not None:
                await error_response(refused)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            exchange.end(500 if status is None else status)
            off_loop.release()


    async def _refused(self, scope: Scope) -> errors.OpenAIError | None:
        keyless = self.keyless is not None and await self.keyless()
        host = foreign_host(scope, self.allowed_hosts, keyless)
        if host is not None:
            return errors.foreign_host(host)
        origin = cross_site_origin(scope, self.allowed_origins, keyless)
        if origin is None:
            return None
        return errors.cross_site_websocket(origin) if scope["type"] == "websocket" else errors.cross_site_request(origin)


def _matches(template: str, path: str) -> bool:
    """Whether ``path`` is ``template``, where a ``{...}`` segment matches any one segment."""
    expected, actual = template.split("/"), path.split("/")
    return len(expected) == len(actual) and all(
        e == a or (e.startswith("{") and e.endswith("}") and a) for e, a in zip(expected, actual)
    )


class BodyLimit(HttpMiddleware):
    """Answers 413 for bodies over ``max_bytes``; uploads (a ``POST`` to a path of
    ``path_limits``, where a ``{...}`` segment matches any one segment: createFile,
    addUploadPart, the audio forms...) have their own limits, each its path's (the families'
    ``Family.body_limits`` and the core's, ``app/chain.py``).

    A chunked body (no Content-Length) is read up to the limit and replayed with its length
    set: Connexion's validation would otherwise take it for a missing body. A chunked
    upload is spooled to a temporary file for that, not held in memory. Added after
    Connexion's security: no byte of a body is read before its key is known good, and
    inside ``BodyDeadline``, which times every read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        limits = dict(path_limits or {})
        self.path_limits = {path: limit for path, limit in limits.items() if "{" not in path}
        self.template_limits = [(template, limit) for template, limit in limits.items() if "{" in template]

    def upload_limit(self, path: str) -> int | None:
        """The limit of a ``POST`` to ``path`` when it is an upload, else None."""
        limit = self.path_limits.get(path)
        if limit is None:
            limit = next((limit for template, limit in self.template_limits if _matches(template, path)), None)
        return limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        upload_limit = self.upload_limit(scope["path"]) if scope["method"] == "POST" else None
        upload = upload_limit is not None
        limit = self.max_bytes if upload_limit is None else upload_limit
        length = headers.get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await error_response(errors.request_too_large(limit))(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            await self.app(scope, receive, send)
            return
        try:
            if upload:
                size, receive = await spool_body(receive, limit)
            else:
                body, receive = await read_body(receive, limit)
                size = None if body is None else len(body)
        except TooLarge:
            await error_response(errors.request_too_large(limit))(scope, receive, send)
            return
        if size is None:
            return  # the client went away
        scope["headers"] = [
            (name, value) for name, value in scope["headers"] if name != b"transfer-encoding"
        ] + [(b"content-length", str(size).encode())]
        await self.app(scope, receive, send)


class CancelOnDisconnect(HttpMiddleware):
    """Cancels a request's work when its client hangs up before the answer starts.

    Uvicorn only tells an app about a disconnect when it reads the request again, which a
    handler waiting for a whole (non-streamed) answer never does: without this, a client
    that timed out - and the SDKs then retry - would leave its generation running to the
    end. Watched from the end of the body to the start of the answer; a streamed answer
    notices the disconnect itself (and stops within one decoding step).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = cast(asyncio.Task, asyncio.current_task())  # a request is served in a task
        watcher: asyncio.Task | None = None

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            scope[CLIENT_GONE] = True
            task.cancel()

        async def receive_body() -> Message:
            nonlocal watcher
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body") and watcher is None:
                watcher = asyncio.create_task(watch())
            return message

        async def send_answer(message: Message) -> None:
            if message["type"] == "http.response.start" and watcher is not None:
                watcher.cancel()
            await send(message)

        try:
            await self.app(scope, receive_body, send_answer)
        except asyncio.CancelledError:
            if not scope.get(CLIENT_GONE):
                raise
            task.uncancel()
        finally:
            if watcher is not None:
                watcher.cancel()


class RecordOperation:
    """Connexion middleware (after routing): tells the request's record which operation
    Connexion routed the request to, and its path parameters (the fast lane tells it
    itself; its operations have none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
            if operation_id is not None:
                record = context.record()
                record.operation_id = operation_id
                record.path_params = dict(scope.get("path_params", {}))
        await self.app(scope, receive, send)
