"""What a family of operations adds to the app besides its controllers and its stores, said
in one place: ``Family``. A family is a spec tag's operations served together (Responses,
Batches, Realtime...). What each needs is found by convention or registered once:

- its operations: in the OpenAI document, or (ours) in an OpenAPI fragment of its own
  (``document``), joined to the extensions document; each routed by ``spec/adapter.py`` to
  ``llm_backend.controllers.<tag>.<operationId>``, or to the module an operation names in
  ``x-openapi-router-controller`` (Connexion's own key);
- its stores: one line each in ``storage.STORES``;
- what runs beside the requests (``start``/``stop``), its WebSocket endpoints (``sockets``)
  and its documents on the pages (``pages``): the hooks below, all optional;
- itself: one line in ``families.FAMILIES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ..http.middleware import Observer
from ..http.key_limits import LimitedAuthenticator
from ..serving.services import Services
from .documents import Served

Middleware = tuple[type, dict[str, object]]  # an ASGI middleware class and its arguments
Document = tuple[str, Callable[[], bytes]]  # a page's title and what builds its JSON


@dataclass(frozen=True)
class Wired:
    """What a family's WebSocket endpoints are built with: they check keys and events and
    report to the metrics as the HTTP requests do."""

    services: Services
    served: Served
    authenticator: LimitedAuthenticator
    observer: Observer | None


def _nothing(_: object) -> list:
    return []


def _no_pages(_: Served) -> dict[str, Document]:
    return {}


@dataclass(frozen=True)
class Family:
    name: str
    # An OpenAPI fragment (paths, components) of operations of its own, served at the root as
    # the extensions are.
    document: Path | None = None
    # Its background tasks, started once the backends and the database are ready (the lifespan).
    start: Callable[[Services], list[asyncio.Task]] = _nothing
    # Its work ended, when the app stops: after every task is cancelled, in the reverse
    # order of ``FAMILIES`` (a later family may use an earlier one's work).
    stop: Callable[[Services], Awaitable[None]] | None = None
    # Its WebSocket endpoints: ASGI middleware added after the HTTP chain.
    sockets: Callable[[Wired], list[Middleware]] = _nothing
    # Its documents on the pages (``/docs/<name>``).
    pages: Callable[[Served], dict[str, Document]] = _no_pages
