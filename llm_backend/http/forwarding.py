"""Requests answered by an upstream API verbatim: method, path, query, body (JSON or
multipart, as bytes) and the headers its rules let through go to the upstream; its status,
the answer's headers they let back, and its body come back unbuffered (the rules, one for
every lane to an upstream: ``backends/upstream/headers.py``). This makes the service a
drop-in for the whole OpenAI API.

These rules decide what is forwarded, all here:
- an operation no controller serves goes to the default upstream (``UnservedOperations``);
- a served operation whose body names a model (``routed_by_model``) is served here when
  the model's backend serves the operation itself (every local backend does), and forwarded
  to the model's upstream otherwise. ``spec/adapter.py`` applies it to every served
  operation with a JSON body, so an operation newly served here for local models keeps
  working for upstream ones;
- an operation on a stored object that may be the upstream's (``found_here_or_upstream``:
  a response or conversation created through a forwarded request) goes to the default
  upstream when the object is not found here.
Whatever the rule, a tenant's forwarded request reaches only its own objects upstream
(``serving/ownership.py``: ``forward`` checks the request and records what the answer shows),
and is limited and priced by what it is (``forwarded_usage.py``: images per image...).
A pure gateway (no local models) forwards every operation of the stateful families as
unserved: it keeps no state of its own for upstream models (each family says which of its
operations, ``Family.answered``; ``app/documents.py`` gathers them).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import ANONYMOUS
from ..backends.base import Relayed, Serving, StreamedBody
from ..backends.capabilities import FORWARDING, Forwarding
from ..errors import OpenAIError
from ..off_loop import large_input, off_loop
from ..serving.ownership import Guard
from . import context, forwarded_usage
from .body import Spool
from .project_limits import admit_model
from .rendering import relay_response


def _api_path(scope: Scope) -> str:
    """The path below the API's base (``/v1``): the upstream's base URL has its own."""
    base_path = scope.get("extensions", {}).get("connexion_routing", {}).get("api_base_path")
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    if base_path is None:  # not routed by Connexion (the fast lane): the first segment is the base
        base_path = "/" + scope["path"].split("/", 2)[1]
    if not path.startswith(base_path):
        path = scope["path"]
    return path[len(base_path) :]


def _guard(scope: Scope) -> Guard | None:
    """The owner checks of a tenant's forwarded request (``serving/ownership.py``); none for
    one tenant (no keys), for an upstream that sees each client's own key, and for the
    organisation's admin operations."""
    caller, services = context.caller(), context.current()
    if caller.owner == ANONYMOUS or services.settings.upstream_pass_client_key or context.record().admin_operation:
        return None
    record = context.record()
    return Guard(
        services.database.forwarded_objects, caller.owner, scope["method"], record.path_params or {},
        scope.get("query_string", b""), services.settings.upstream_max_read_bytes,
        record.operation_id in services.objectless_answers,
    )


async def forward(backend: Forwarding, scope: Scope, content: bytes | StreamedBody | None) -> Response:
    return relay_response(await forwarded(backend, scope, content))


async def forwarded(backend: Forwarding, scope: Scope, content: bytes | StreamedBody | None) -> Relayed:
    """The upstream's answer to the request ``scope`` describes, the tenant's checks passed
    (a WebSocket's ``response.create`` for an upstream's model comes this way too:
    ``responses_upstream.py``)."""
    method, path, query, headers = scope["method"], _api_path(scope), scope.get("query_string", b""), scope["headers"]
    guard = _guard(scope)
    if guard is None:
        return await backend.forward(method, path, query, headers, content)
    await guard.check(content, headers)
    answer = await backend.forward(method, path, guard.upstream_query(query), headers, content)
    return await guard.answer(answer, lambda page: backend.forward("GET", path, page, headers, None))


async def forward_served(backend: Forwarding, body: object) -> Response:
    """The request being served, to ``backend``: its validated JSON body re-encoded (the
    bytes were read by validation), no body for an operation without one."""
    content = await off_loop(large_input(), _encoded, body) if isinstance(body, dict) else None
    return await forward(backend, context.scope(), content)


def _encoded(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()  # one C call: 8 MiB holds the GIL 0.1-0.3 s


class Passthrough:
    """An ASGI app that forwards the request to ``upstream`` and relays the answer."""

    def __init__(self, upstream: Forwarding) -> None:
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Read whole (the body limit middleware bounds it) so that a retry can send it
        # again; a large body (an upload of up to 512 MB) into a temporary file, sent on
        # from there, never whole in memory.
        spool = await Spool.read(receive)
        if spool is None:
            return  # the client left
        try:
            small = spool.in_memory()
            body = small if small is not None else StreamedBody(spool.size, spool.chunks)
            counted = await forwarded_usage.admitted(scope, body)  # limited and priced by what it is
            response = await forward(self.upstream, scope, body)
            forwarded_usage.answered(counted, response.status_code)
            await response(scope, receive, send)
        finally:
            spool.close()


class UnservedOperations:
    """Connexion middleware (after routing and security, before validation): an operation
    we do not serve goes to ``forward``, the default upstream, with its request untouched -
    the body is not parsed, so a multipart upload passes as the bytes the client sent.
    Without an upstream this middleware is not installed and the resolver's fallback
    answers 404 (an unknown URL, as OpenAI answers)."""

    def __init__(self, app: ASGIApp, unserved: frozenset[str], forward: ASGIApp) -> None:
        self.app = app
        self.unserved = unserved
        self.forward = forward

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routing = scope.get("extensions", {}).get("connexion_routing", {})
            if routing.get("operation_id") in self.unserved:
                await self.forward(scope, receive, send)
                return
        await self.app(scope, receive, send)


Controller = Callable[..., Awaitable[Response]]


def routed_by_model(operation_id: str, controller: Controller) -> Controller:
    """``controller`` for requests whose body names a model that the model's backend serves
    itself (every local one); a request for a model of an upstream API that does not is
    forwarded to that upstream, its validated body re-encoded."""

    @functools.wraps(controller)
    async def served(*args, **kwargs) -> Response:
        body = kwargs.get("body")
        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str):
            context.record().model = model
            await admit_model(model, body=body)  # the project's limits and permissions (http/project_limits.py)
            registry = context.current().registry
            if registry.backend_for(model).serving(operation_id) is Serving.FORWARDED:
                response = await forward_served(registry.serving(model, FORWARDING), body)
                forwarded_usage.answered_by_model(operation_id, model, body, response.status_code)
                return response
        return await controller(*args, **kwargs)

    return served


# The tags whose objects may live here or upstream (created through a forwarded request).
SHARED_STATE_TAGS = frozenset({"Responses", "Conversations"})


def found_here_or_upstream(controller: Controller) -> Controller:
    """``controller``; when the object it addresses is not found here (404 ``not_found``)
    and a default upstream is configured, the request goes there instead."""

    @functools.wraps(controller)
    async def served(*args, **kwargs) -> Response:
        try:
            return await controller(*args, **kwargs)
        except OpenAIError as error:
            upstream = context.current().registry.default_upstream
            if upstream is None or error.status != 404 or error.code != "not_found":
                raise
            return await forward_served(upstream, kwargs.get("body"))

    return served


async def forward_form(backend: Forwarding, fields: dict[str, Any], file: tuple[str, bytes, str]) -> Response:
    """A multipart request served here only for local models, to its model's upstream: the
    form re-encoded as the SDKs send it (validation read the bytes; arrays as ``name[]``,
    objects as ``name[key]``)."""
    data: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, dict):
            data.update({f"{name}[{key}]": str(item) for key, item in value.items()})
        elif isinstance(value, list):
            data[f"{name}[]"] = [str(item) for item in value]
        elif value is not None:
            data[name] = str(value).lower() if isinstance(value, bool) else str(value)
    encoded = httpx.Request("POST", "http://upstream/", data=data, files={"file": file})
    scope = context.scope()
    headers = [(name, value) for name, value in scope["headers"] if name not in (b"content-type", b"content-length")]
    headers.append((b"content-type", encoded.headers["content-type"].encode()))
    return await forward(backend, {**scope, "headers": headers}, encoded.read())
