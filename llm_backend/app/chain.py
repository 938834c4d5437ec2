"""The HTTP middleware chain, in Connexion's positions: what runs before the key is checked,
before a body is read, around every request (the families' own outside it all:
``Family.middleware``), and the fast lane beside Connexion's pipeline. WebSocket endpoints and
the pages are added after it (``app/__init__.py``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from starlette.middleware.cors import CORSMiddleware

from ..controllers import audio
from ..families.family import Family, Wired
from ..http import problems
from ..http.body_deadline import BodyDeadline
from ..http.fast_lane import FastLane
from ..http.forwarding import Passthrough, UnservedOperations
from ..http.middleware import BodyLimit, CancelOnDisconnect, RecordOperation, RequestContext
from ..settings import Settings
from ..spec import validation


async def checked_body(schema: dict, operation_id: str, raw: bytes):
    return await validation.checked_json(schema, raw, operation_id)


def add(app: AsyncApp, settings: Settings, wired: Wired, families: Sequence[Family]) -> None:
    services, served, authenticator, observer = wired.services, wired.served, wired.authenticator, wired.observer
    problems.register(app)
    app.add_middleware(RecordOperation, MiddlewarePosition.BEFORE_SECURITY)
    # Everything that reads a body comes after Connexion's security: the key is known good
    # before a byte of the body is read (an unauthenticated request gets its 401 at once).
    # A body is bounded by max_body_bytes, but where the core (the audio forms) or a family
    # (``Family.body_limits``) gives its path a limit of its own: a multipart file's.
    app.add_middleware(
        BodyLimit,
        MiddlewarePosition.BEFORE_VALIDATION,
        max_bytes=settings.max_body_bytes,
        path_limits={
            **audio.body_limits(settings),
            **{path: limit for family in families for path, limit in family.body_limits(settings).items()},
        },
    )
    if services.registry.default_upstream is not None:
        app.add_middleware(
            UnservedOperations,
            MiddlewarePosition.BEFORE_VALIDATION,
            unserved=served.unserved | served.forwarded,
            forward=Passthrough(services.registry.default_upstream),
        )
    # Added in order from the outside in: the families' own first, around everything else.
    for family in families:
        for middleware, arguments in family.middleware(wired):
            app.add_middleware(middleware, MiddlewarePosition.BEFORE_EXCEPTION, **arguments)
    app.add_middleware(
        RequestContext,
        MiddlewarePosition.BEFORE_EXCEPTION,
        services=services,
        observer=observer,
        allowed_origins=settings.cors_origins,
        allowed_hosts=settings.allowed_hosts,
        keyless=authenticator.open,
    )
    app.add_middleware(BodyDeadline, MiddlewarePosition.BEFORE_EXCEPTION, seconds=settings.body_timeout, min_rate=settings.body_min_rate)
    app.add_middleware(CancelOnDisconnect, MiddlewarePosition.BEFORE_EXCEPTION)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            MiddlewarePosition.BEFORE_EXCEPTION,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-request-id"],
        )
    # After Connexion's routing and security (the key checked), before its validation. The
    # operations a family keeps on Connexion's whole way never take it (``Answered.whole_way``).
    routes = {
        operation_id: (controller, functools.partial(checked_body, schema, operation_id))
        for operation_id, controller, schema in served.body_operations.values()
        if operation_id not in served.forwarded and operation_id not in served.whole_way
    }
    app.add_middleware(FastLane, MiddlewarePosition.BEFORE_VALIDATION, routes=routes)
