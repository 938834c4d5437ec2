"""The Responses WebSocket mode: ``/v1/responses`` upgraded to a WebSocket, as the SDK opens
it with ``client.responses.connect()``.

The key is checked at the handshake by the same ``Authenticator`` as HTTP (a refused key
gets the HTTP answer, 401 and OpenAI's error body, and no socket), and again for each
``response.create``: a revoked key stops working mid-connection, and the per-key rate
limits count each response as one request (the handshake counts as one too).

Each ``response.create`` event is checked by the spec (``spec/client_events.py``) and
answered by the same code as a streamed ``POST /v1/responses``
(``serving/responses/service.create``), or for an upstream's model forwarded as one
(``responses_upstream.py``): its events go out as JSON text frames, with the event's
``stream_id`` when it had one. Events of one lane (one ``stream_id``, or none) are
served one after the other in the order they came; lanes run side by side, at most
``MAX_LANES`` per connection, each holding at most ``LANE_QUEUE`` events behind the one
being answered (one more is refused with an ``error`` event, 429
``websocket_stream_queue_full``; uvicorn's ``ws_max_size`` is ``max_body_bytes``): a client
cannot queue work without bound. Nor can a slow reader make events pile up: a frame is sent
only once the transport has room (WebSocket flow control), and until then its lane waits,
as a streamed HTTP answer waits for its reader. A client mistake (a frame that is not a
JSON object, an invalid event, an unknown ``previous_response_id``, ``background``, which
the mode does not support) is answered by an ``error`` event (``ResponseWsError``: the HTTP status and
OpenAI's error body) and the connection stays open. A client that leaves mid-response
leaves it stored as ``incomplete``, as over HTTP. The connection remembers its last
``store: false`` response, which a ``previous_response_id`` on the same socket continues
(``serving/responses/memory.py``), as OpenAI's does.

A connection lasts at most ``responses_websocket_seconds`` (OpenAI's: 60 minutes): then an
``error`` event ``websocket_connection_limit_reached`` (on no lane: the connection's) and the
socket is closed. A large event is parsed and checked off the event loop (``off_loop.py``),
and its fragments must arrive within the body deadline (``http/socket_deadline.py``).

The socket passes the HTTP edge (``http/middleware.RequestContext``: a request id, the
``Origin`` check, the access log line of the connection). Each ``response.create`` is an
``Exchange`` of its own, as an HTTP request is: a ``createResponse`` in the metrics (status,
duration, time to first token, tokens), the usage accounting and the access log (method
``WEBSOCKET``, in the socket's request id).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from contextlib import aclosing
from typing import cast

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..backends.base import Stream
from ..errors import OpenAIError, answered, bad_request, connection_limit_reached, stream_queue_full
from ..json.text import LARGE_BODY
from ..json.types import Json
from ..off_loop import off_loop
from ..serving.responses import service
from ..serving.responses.memory import ConnectionMemory
from ..serving.responses.streamed_text import Event
from . import context, responses_upstream
from .project_limits import admit_model
from .middleware import CLIENT_CLOSED_REQUEST, Exchange
from .rendering import error_response
from .socket_endpoint import SocketEndpoint, client_event, receive_frames

log = logging.getLogger(__name__)

# Lanes (``stream_id``s) one connection may open; beyond: ``websocket_stream_limit_reached``.
MAX_LANES = 16
# ``response.create`` events one lane holds behind the one it is answering.
LANE_QUEUE = 4


def error_event(error: OpenAIError, stream_id: str | None = None) -> Json:
    """``ResponseWsError``: the status the HTTP answer would have had, and its body."""
    event = {"type": "error", "status": error.status, "error": error.body()["error"]}
    if stream_id is not None:
        event["stream_id"] = stream_id
    return event


class ResponsesSocket(SocketEndpoint):
    """``/v1/responses`` upgraded: a keyed connection answering ``response.create`` events."""

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        authorization = websocket.headers.get("authorization")
        try:
            await self.authenticator.authenticate(authorization)
        except OpenAIError as error:
            await websocket.send_denial_response(error_response(error))
            return
        await websocket.accept()
        await Connection(self, websocket, authorization).serve()


class Connection:
    """One client's socket: its lanes, each a queue of checked ``response.create`` bodies."""

    def __init__(self, socket: ResponsesSocket, websocket: WebSocket, authorization: str | None) -> None:
        self.socket = socket
        self.websocket = websocket
        self.authorization = authorization
        self.lanes: dict[str | None, asyncio.Queue[tuple[Json, bool]]] = {}  # each body, and whether its frame was large
        # Per lane: the event being answered and those waiting. Counted here, not read off the
        # queue, so that the bound does not depend on whether the lane's task has yet taken
        # its first event (under load it may not have when the next ones arrive).
        self.pending: collections.Counter[str | None] = collections.Counter()
        self.tasks: list[asyncio.Task] = []
        self.sending = asyncio.Lock()
        self.memory = ConnectionMemory()

    async def serve(self) -> None:
        seconds = self.socket.services.settings.responses_websocket_seconds
        try:
            if await receive_frames(self.websocket, seconds, self._dispatch):
                # The connection's lifetime (OpenAI's: 60 minutes) is up: told, then closed.
                await self._stop_responses()
                with contextlib.suppress(Exception):
                    await self._send(error_event(connection_limit_reached(seconds)))
                    await self.websocket.close(1000)
        finally:
            await self._stop_responses()

    async def _stop_responses(self) -> None:
        """The client is gone, or its time is up: its responses stop (each stored as it ended)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _dispatch(self, frame: str | bytes) -> None:
        # Parsing and checking an event is sized by it: off the event loop when large.
        large = len(frame) > LARGE_BODY
        body, lane = await off_loop(large, self._checked, frame)
        if isinstance(body, OpenAIError):
            await self._send(error_event(body, lane))
            return
        queue = self.lanes.get(lane)
        if queue is None:
            if len(self.lanes) >= MAX_LANES:
                error = bad_request(
                    f"This WebSocket connection has reached its limit of {MAX_LANES} streams.",
                    "stream_id",
                    "websocket_stream_limit_reached",
                )
                await self._send(error_event(error, lane))
                return
            queue = self.lanes[lane] = asyncio.Queue()
            self.tasks.append(asyncio.create_task(self._lane(lane, queue), name=f"responses lane {lane}"))
        if self.pending[lane] > LANE_QUEUE:  # one answered, LANE_QUEUE waiting
            await self._send(error_event(stream_queue_full(lane, LANE_QUEUE), lane))
            return
        self.pending[lane] += 1
        queue.put_nowait((body, large))

    def _checked(self, frame: str | bytes) -> tuple[Json | OpenAIError, str | None]:
        """The ``response.create`` body a frame carries and its lane; or its error and the
        ``stream_id`` the event claimed."""
        try:
            event = client_event(frame, self.socket.services.settings.max_body_values)
        except OpenAIError as error:
            return error, None
        try:
            return self.socket.check_event(event, len(frame) > LARGE_BODY)
        except OpenAIError as error:
            claimed = event.get("stream_id") if isinstance(event, dict) else None
            return error, claimed if isinstance(claimed, str) else None

    async def _lane(self, lane: str | None, queue: asyncio.Queue[tuple[Json, bool]]) -> None:
        while True:
            body, large = await queue.get()
            try:
                await self._respond(body, lane, large)
            finally:
                self.pending[lane] -= 1

    async def _respond(self, body: Json, lane: str | None, large: bool) -> None:
        """One ``response.create``: the events of a streamed ``POST /v1/responses``, answered
        here or, for an upstream's model, by the upstream (``responses_upstream.py``)."""
        services = self.socket.services
        exchange = Exchange(self.websocket.scope, services, self.socket.observer, "WEBSOCKET")
        exchange.record.operation_id, exchange.record.model = "createResponse", body.get("model")
        status = 200
        try:
            try:
                principal = await self.socket.authenticator.authenticate(self.authorization)
                context.authenticated(principal)
                if body.get("background"):
                    raise bad_request(
                        "'background' is not supported in the Responses WebSocket mode.", "background", "unsupported_parameter"
                    )
                if isinstance(body.get("model"), str):
                    await admit_model(body["model"], body=body)  # the project's limits and permissions, as over HTTP
                # Streamed: its events (an async generator), never the object.
                streamed = {**body, "stream": True}
                if responses_upstream.answers(services, body):
                    events = await responses_upstream.create(
                        services, principal.owner, streamed, self.memory, self.websocket.scope, large
                    )
                else:
                    events = cast(Stream[Event], await service.create(services, principal.owner, streamed, self.memory))
            except Exception as exc:
                error = answered(exc)
                status = error.status
                self.memory.forget(body.get("previous_response_id"))
                await self._send(error_event(error, lane))
                return
            async with aclosing(events):
                try:
                    async for _, event in events:
                        await self._send(event, lane)
                        exchange.event(event)
                except (asyncio.CancelledError, WebSocketDisconnect):
                    status = CLIENT_CLOSED_REQUEST
                    raise
                except OpenAIError as error:
                    # Once its events flow, a failure is told in them and logged as an SSE
                    # stream's is (sse.py): an upstream that broke off is no fault of ours.
                    log.warning("stream failed: %s", error.message)
                    await self._send(error_event(error, lane))
                except Exception as exc:
                    await self._send(error_event(answered(exc), lane))
        finally:
            exchange.end(status)

    async def _send(self, event: Json, lane: str | None = None) -> None:
        if lane is not None:
            event = {**event, "stream_id": lane}
        async with self.sending:
            await self.websocket.send_text(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
