"""ASGI middleware for what every request shares: a request id with an access log line,
the body size limit, and cancelling the work of a client that hung up."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Protocol

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import errors
from . import context
from .body import TooLarge, read_body, spool_body
from .rendering import error_response

access_log = logging.getLogger("llm_backend.access")
# Logged for a request whose client left before its answer started (nginx's code for it).
CLIENT_CLOSED_REQUEST = 499
CLIENT_GONE = "llm_backend.client_gone"


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

    def finished(self, status: int) -> None: ...


class Observer(Protocol):
    def begin(self, record: context.Record) -> Observation: ...


class RequestContext(HttpMiddleware):
    """Gives each request an id (``x-request-id``, as OpenAI does) and logs one line for it;
    opens the request's ``context`` with the app's services; adds the rate-limit headers the
    request earned; and shows the answer to the ``observer`` (the metrics) on its way out -
    one wrapper of ``send`` for all of it."""

    def __init__(self, app: ASGIApp, services: context.Services | None = None, observer: Observer | None = None) -> None:
        super().__init__(app)
        self.services = services
        self.observer = observer

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = "req_" + uuid.uuid4().hex
        record = context.enter(scope, self.services)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        observation = self.observer.begin(record) if self.observer is not None else None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode()), *record.headers]
            if observation is not None:
                observation.sent(message)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            status = final_status(scope, status)
            if observation is not None:
                observation.finished(status)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


class BodyLimit(HttpMiddleware):
    """Answers 413 for bodies over ``max_bytes``; uploads (``POST`` to one of
    ``upload_paths``: createFile) have their own, larger limit, ``upload_bytes``; a path of
    ``path_limits`` (the audio uploads: OpenAI's 25 MB) has its own.

    A chunked body (no Content-Length) is read up to the limit and replayed with its length
    set: Connexion's validation would otherwise take it for a missing body. A chunked
    upload is spooled to a temporary file for that, not held in memory.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_bytes: int | None = None,
        upload_paths: frozenset[str] = frozenset(),
        path_limits: dict[str, int] | None = None,
    ) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes
        self.upload_paths = upload_paths
        self.path_limits = path_limits or {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        post = scope["method"] == "POST"
        upload = post and (scope["path"] in self.upload_paths or scope["path"] in self.path_limits)
        limit = self.upload_bytes if upload else self.max_bytes
        if post and scope["path"] in self.path_limits:
            limit = self.path_limits[scope["path"]]
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
        task = asyncio.current_task()
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
    Connexion routed the request to (the fast lane tells it itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
            if operation_id is not None:
                context.record().operation_id = operation_id
        await self.app(scope, receive, send)
