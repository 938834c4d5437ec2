"""A batch line answered as the request it stands for, through the same pipeline.

A line ``{"url": "/v1/chat/completions", "body": {...}}`` is the request ``POST
/v1/chat/completions`` with that body, sent by the batch's owner. It takes the fast lane's
route to the operation (``spec/batch_endpoints.py``: the operationId, the very controller
Connexion calls with its forwarding rules), is checked by the same compiled schema and
unknown-field rule (``spec/validation.check_body``), and its answer
or error is rendered by the same renderers; the metrics and usage accounting see it as they
see a request (tokens counted per key and model). Nothing here knows what a chat
completion is: a rule of an endpoint lives once, in its controller.

What differs from a request from the network: the caller is the key that created the batch
(the batch keeps its name, never the key), and the line runs at low priority
(``backends.base.background``): a local model answers it on its low-priority engine.

A line is admitted as that key's request would be (issue #47: lines ran as their project,
past its archiving and its spend limit): the key still let in (``Authenticator.holder``: not
revoked, deleted or expired, still configured, its project not archived), then the hard
spend limits (``SpendMeter.admit``, as ``rate_limits.LimitedAuthenticator`` admits a
request), then, where the body names its model, the project's per-model limits and its spend
hold (the endpoint's own ``routed_by_model``: ``project_limits.admit_model``), settled when
the line ends, however it ends. A refusal of the first two is ``Refused``: the batch runner
runs no further line of the batch (serving/batches/runner.py). The hold is what keeps a
batch's lines, running ``batch_concurrency`` at once, within its limit: a line holds its most
before it runs (waiting for this process's other holds rather than be refused by them), so
no line waits for the one before to be priced. Per-key rate limits are not applied:
OpenAI keeps batch limits apart from the interactive ones (``project_limits.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import structlog
from starlette.responses import Response
from starlette.types import Message

from ..auth import Authenticator, Principal
from ..backends.base import background
from ..errors import OpenAIError, answered, invalid_key, server_error, upstream_unreadable
from ..json.types import Json
from ..serving.batch_lines import Refused
from ..serving.services import Services
from ..storage.batches import Claimed
from .. import off_loop
from ..json.scan import MAX_JSON_DEPTH
from ..json.text import LARGE_BODY, loads
from . import context, project_limits
from .middleware import Observer
from .rendering import RelayStream, error_response

log = logging.getLogger(__name__)


class Endpoint(Protocol):
    """What a line of an endpoint needs (``spec/batch_endpoints.BatchEndpoint``)."""

    @property
    def operation_id(self) -> str: ...

    @property
    def required(self) -> tuple[str, ...]: ...

    def controller(self, *, body: Json) -> Any: ...

    def check(self, body: Json) -> None: ...


class _PastLimit(Exception):
    """A relayed answer longer than the upstream's read limit: no line holds it whole."""


async def _sent(response: Response, observation: Any, limit: int) -> tuple[int, bytes, float | None]:
    """Play ``response`` (JSON, or an upstream's relayed bytes) to a collector: its status,
    body and ``retry-after`` seconds, shown to the metrics as the network's answer would be.
    A relayed answer is held whole here, so only up to ``limit`` bytes (``upstream_max_read_bytes``):
    past it, ``_PastLimit``, and the relay closes the upstream's request (``RelayStream``). A
    local answer is bounded by its request's own budget (tokens, inputs)."""
    status, parts, retry_after, held = 500, [], None, 0
    bounded = isinstance(response, RelayStream)

    async def send(message: Message) -> None:
        nonlocal status, retry_after, held
        if message["type"] == "http.response.start":
            status = message["status"]
            retry_after = _seconds(dict(message.get("headers") or ()).get(b"retry-after"))
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            held += len(parts[-1])
            if bounded and held > limit:
                raise _PastLimit
        if observation is not None:
            observation.sent(message)

    async def receive() -> Message:
        await asyncio.Event().wait()  # a line's client never goes away
        return {"type": "http.disconnect"}

    await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    return status, b"".join(parts), retry_after


def _answer_json(content: bytes) -> Any:
    """A line's answer as JSON (``json_text.loads``), as deep as what it echoes may make it."""
    return loads(content, None, 2 * MAX_JSON_DEPTH, unique_keys=False)


def _seconds(value: bytes | None) -> float | None:
    """A ``retry-after`` of seconds (an HTTP date, which nothing here sends, is not read)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class BatchLines:
    """The batch endpoints served here and how a line of each is answered (the batch
    runner's ``Lines``, serving/batch_lines.py)."""

    def __init__(
        self, services: Services, endpoints: Mapping[str, Endpoint], base_path: str, observer: Observer | None,
        authenticator: Authenticator | None = None, family_routes: Mapping[str, Endpoint] | None = None,
    ) -> None:
        self.services = services
        # Every route a line may take: OpenAI's batch endpoints, and the families' own kinds'
        # (``Family.batch_routes``: a Message Batch's ``/v1/messages``), which an OpenAI batch
        # may not name (``endpoints``).
        self.routes = {**endpoints, **(family_routes or {})}
        self.base_path = base_path
        self.observer = observer
        self.authenticator = authenticator
        self.endpoints = frozenset(endpoints)

    def required(self, endpoint: str) -> list[str]:
        return list(self.routes[endpoint].required)

    async def answer(self, batch: Claimed, body: Json) -> tuple[int, Json, str, float | None]:
        """(status, JSON body, request id, retry-after) of the line's request; run in a task of its own,
        so that what it sets in the request context stays its own. ``Refused`` when its
        batch's key or project would not be let in now."""
        return await asyncio.create_task(self._answer(batch, body))

    async def _admitted(self, batch: Claimed) -> Principal:
        """Who the line runs as, admitted as a request of the batch's key is (``Refused``
        else): the key still let in, then the hard spend limits (``LimitedAuthenticator``'s
        ``quota``; per-key rate limits are the interactive ones)."""
        if self.authenticator is None:
            return Principal(batch.owner)
        principal = await self.authenticator.holder(batch.owner, batch.creator)
        if principal is None:
            raise Refused(invalid_key())
        meter = getattr(self.services, "spend_meter", None)
        if meter is not None:
            try:
                await meter.admit(principal)
            except OpenAIError as refusal:
                raise Refused(refusal) from None
        return principal

    async def _answer(self, batch: Claimed, body: Json) -> tuple[int, Json, str, float | None]:
        route = self.routes[batch.endpoint]
        request_id = "req_" + uuid.uuid4().hex
        path = self.base_path + batch.endpoint.removeprefix("/v1")
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())],
        }
        record = context.enter(scope, self.services)
        context.authenticated(await self._admitted(batch))
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
            try:
                status, content, retry_after = await _sent(response, observation, self.services.settings.upstream_max_read_bytes)
            except _PastLimit:
                log.warning("a batch line's upstream answer past %d bytes: refused, it cannot be held whole", self.services.settings.upstream_max_read_bytes)
                status, content, retry_after = 502, bytes(error_response(upstream_unreadable()).body), None
            try:
                # An answer can be large too (2048 embeddings: 16 MB of numbers), and an
                # upstream's deep: scanned first (json/scan.py), deeper than a request may
                # be by what wraps what it echoes (a response's tools, its text.format). A
                # key twice in it is the upstream's to answer for: read as it came.
                parsed = await off_loop.off_loop(len(content) > LARGE_BODY, _answer_json, content)
            except (ValueError, OpenAIError):
                parsed = None
        finally:
            try:
                if observation is not None:
                    observation.finished(status)  # its usage counted (an upstream's answer: at its end)
            finally:
                project_limits.settle(record)  # its spend hold (``admit_model``), now that its cost is known
                off_loop.release()  # a line's end is its request's (RequestContext's part)
        if not isinstance(parsed, dict):
            return 500, server_error().body(), request_id, None
        return status, parsed, request_id, retry_after
