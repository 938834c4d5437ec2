"""A batch line answered as the request it stands for, through the same pipeline.

A line ``{"url": "/v1/chat/completions", "body": {...}}`` is the request ``POST
/v1/chat/completions`` with that body, sent by the batch's owner. It takes the fast lane's
route to the operation (``spec/batch_endpoints.py``: the operationId, the very controller
Connexion calls with its forwarding rules), is checked by the same compiled schema and
unknown-field rule (``spec/validation.check_body``), and its answer
or error is rendered by the same renderers; the metrics and usage accounting see it as they
see a request (tokens counted per key and model). Nothing here knows what a chat
completion is: a rule of an endpoint lives once, in its controller.

What differs from a request from the network: the caller is the batch's owner (no key is
kept: the principal is set from the batch), and the line runs at low priority
(``backends.base.background``): a local model answers it on its low-priority engine.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Protocol

import structlog
from starlette.responses import Response

from ..auth import Principal
from ..backends.base import background
from ..errors import OpenAIError, answered, server_error
from ..serving.services import Services
from .. import off_loop
from ..json_scan import MAX_JSON_DEPTH
from ..json_text import LARGE_BODY, loads
from . import context
from .middleware import Observer
from .rendering import error_response

Json = dict[str, Any]


class Endpoint(Protocol):
    """What a line of an endpoint needs (``spec/batch_endpoints.BatchEndpoint``)."""

    operation_id: str
    required: tuple[str, ...]

    def controller(self, *, body: Json) -> Any: ...

    def check(self, body: Json) -> None: ...


async def _sent(response: Response, observation: Any) -> tuple[int, bytes, float | None]:
    """Play ``response`` (JSON, or an upstream's relayed bytes) to a collector: its status,
    body and ``retry-after`` seconds, shown to the metrics as the network's answer would be."""
    status, parts, retry_after = 500, [], None

    async def send(message: dict) -> None:
        nonlocal status, retry_after
        if message["type"] == "http.response.start":
            status = message["status"]
            retry_after = _seconds(dict(message.get("headers") or ()).get(b"retry-after"))
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
        if observation is not None:
            observation.sent(message)

    async def receive() -> dict:
        await asyncio.Event().wait()  # a line's client never goes away
        return {"type": "http.disconnect"}

    await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    return status, b"".join(parts), retry_after


def _seconds(value: bytes | None) -> float | None:
    """A ``retry-after`` of seconds (an HTTP date, which nothing here sends, is not read)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class BatchLines:
    """The batch endpoints served here and how a line of each is answered (the batch
    runner's ``Lines``, serving/batches/runner.py)."""

    def __init__(self, services: Services, endpoints: dict[str, Endpoint], base_path: str, observer: Observer | None) -> None:
        self.services = services
        self.routes = endpoints
        self.base_path = base_path
        self.observer = observer
        self.endpoints = frozenset(endpoints)

    def required(self, endpoint: str) -> list[str]:
        return list(self.routes[endpoint].required)

    async def answer(self, owner: str, endpoint: str, body: Json) -> tuple[int, Json, str, float | None]:
        """(status, JSON body, request id, retry-after) of the line's request; run in a task of its own,
        so that what it sets in the request context stays its own."""
        return await asyncio.create_task(self._answer(owner, endpoint, body))

    async def _answer(self, owner: str, endpoint: str, body: Json) -> tuple[int, Json, str, float | None]:
        route = self.routes[endpoint]
        request_id = "req_" + uuid.uuid4().hex
        path = self.base_path + endpoint.removeprefix("/v1")
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())],
        }
        record = context.enter(scope, self.services)
        context.authenticated(Principal(owner))
        record.operation_id = route.operation_id
        background.set(True)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        observation = self.observer.begin(record) if self.observer is not None else None
        status, retry_after = 500, None
        try:
            try:
                # A line's body is up to max_body_bytes: checked beside the loop, as a
                # request's large body is (off_loop.py).
                await off_loop.off_loop(True, route.check, body)
                response = await route.controller(body=body)
            except Exception as exc:  # answered and logged as a request's error is
                response = error_response(answered(exc))
            status, content, retry_after = await _sent(response, observation)
            try:
                # An answer can be large too (2048 embeddings: 16 MB of numbers), and an
                # upstream's deep: scanned first (json_scan.py), deeper than a request may
                # be by what wraps what it echoes (a response's tools, its text.format).
                parsed = await off_loop.off_loop(len(content) > LARGE_BODY, loads, content, None, 2 * MAX_JSON_DEPTH)
            except (ValueError, OpenAIError):
                parsed = None
        finally:
            if observation is not None:
                observation.finished(status)
            off_loop.release()  # a line's end is its request's (RequestContext's part)
        if not isinstance(parsed, dict):
            return 500, server_error().body(), request_id, None
        return status, parsed, request_id, retry_after
