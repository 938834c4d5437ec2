"""What a family of operations is to the app, said in one place: ``Family``. A family is a
spec tag's operations served together (Anthropic's Messages, Responses, Batches...), and
everything they need besides the core: its controllers, its serving code, its store and
migrations, its settings and errors, its document, its middleware, its background work.

Registered once, by one line in ``families.FAMILIES``; the app reads every part from there
and names no family (``app/``). Each part below is optional. What needs no registering:

- its stores: ``database.store(TheStore)`` builds one on first use (``storage.Database``);
- its settings' values: ``settings.of(TheSettings)`` (``settings.FamilySettings``), checked
  once at start-up when named here;
- its errors: factories in its ``errors.py``, raised where they happen, rendered by the one
  renderer (an ``OpenAIError`` of the catalogue, ``errors/error.py``).

A family in a folder of its own (``families/<name>/``) keeps its files by role, each of its
layer's rank (``tests/unit/test_layers.py``: ``controller.py``, ``document.py``,
``middleware.py``, ``serving.py`` or ``serving/``, ``backend.py``, ``store.py``,
``migrations/``, ``settings.py``, ``errors.py``; ``__init__.py`` its ``FAMILY``), whose hooks
import the parts they wire when called: the command line reads the registry (its migrations)
without the web stack. docs/FAMILIES.md walks through adding one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connexion.spec import Specification

    from ..backends.events import ModelEvents
    from ..http.key_limits import LimitedAuthenticator
    from ..http.middleware import Observer
    from ..serving.services import Services
    from ..settings import FamilySettings, Settings

Middleware = tuple[type, dict[str, object]]  # an ASGI middleware class and its arguments
Document = tuple[str, Callable[[], bytes]]  # a page's title and what builds its JSON


@dataclass(frozen=True)
class Served:
    """The documents as served (``app/documents.py``), and which of their operations are
    answered how: what a family's hooks are given of them."""

    openai: dict
    extensions: dict
    documents: Mapping[str, dict]  # family name -> the document it serves beside OpenAI's, as written
    specification: Specification  # the OpenAI document as Connexion resolved it ($refs followed)
    forwarded: frozenset[str]  # operations sent verbatim to the default upstream
    whole_way: frozenset[str]  # operations on Connexion's whole way, never the fast lane (``Answered``)
    unserved: frozenset[str]  # operations no controller here answers
    # (method, path) -> (operationId, controller, body schema) of the operations whose whole
    # input is a JSON body (adapter.json_body_operations): the fast lane's and batch lines'.
    body_operations: dict[tuple[str, str], tuple[str, Callable, dict]]

    @property
    def base_path(self) -> str:
        return self.specification.base_path


@dataclass(frozen=True)
class Wired:
    """What a family's WebSocket endpoints are built with: they check keys and events and
    report to the metrics as the HTTP requests do."""

    services: Services
    served: Served
    authenticator: LimitedAuthenticator
    observer: Observer | None


@dataclass(frozen=True)
class Joined:
    """A document of a family's own served by the OpenAI document's API at ``/v1``
    (Connexion keeps one API per base path: a second at ``/v1`` would replace the first):
    ``file`` in the settings' ``spec_dir``, joined by ``join(openai, own)`` to the OpenAI
    document as Connexion is given it (the file stays as written)."""

    file: str
    join: Callable[[dict, dict], dict]


@dataclass(frozen=True)
class Answered:
    """Where a family's operations of the OpenAI document are answered when not by the core's
    rule (an operation with a controller here is served here; one without, by the default
    upstream): what its ``answered`` hook says, given the settings, the document (as routed)
    and whether this is a pure gateway (a default upstream, no local models)."""

    forwarded: frozenset[str] = frozenset()  # sent verbatim to the default upstream, served here or not
    kept: frozenset[str] = frozenset()  # never sent to the default upstream, though no controller answers them
    whole_way: frozenset[str] = frozenset()  # Connexion's whole way (their controllers take its parameters)


def gateway_forwards(*tags: str) -> Callable[[Settings, dict, bool], Answered]:
    """The ``answered`` of a family that keeps state here for local models only: a pure
    gateway keeps none for upstream models, so its operations of ``tags`` go upstream."""

    def answered(_: Settings, document: dict, gateway: bool) -> Answered:
        from ..spec.adapter import operation_ids_of  # with the app only: the web stack

        return Answered(forwarded=operation_ids_of(document, frozenset(tags))) if gateway else Answered()

    return answered


def _as_the_core_says(_: Settings, __: dict, ___: bool) -> Answered:
    return Answered()


def _nothing(_: object) -> list:
    return []


def _no_pages(_: Served) -> dict[str, Document]:
    return {}


def _no_routes(_: Served) -> dict[str, Any]:
    return {}


def _no_backends(_: Settings, __: ModelEvents) -> list:
    return []


def _no_limits(_: Settings) -> dict[str, int]:
    return {}


@dataclass(frozen=True)
class Family:
    name: str
    # Its controller modules by spec tag: an operation of that first tag is answered by the
    # module's ``<operationId in snake_case>`` (Connexion's ``x-openapi-router-controller``,
    # set as the documents are served). A tag no family names: ``controllers/<tag>.py``.
    controllers: Mapping[str, str] = field(default_factory=dict)
    # An OpenAPI fragment (paths, components) of operations of its own, served at the root as
    # the extensions are.
    document: Path | None = None
    # A document of its own served beside OpenAI's, at /v1 (``Joined``).
    joined: Joined | None = None
    # Its HTTP middleware, outside every other layer (it sees every answer, whoever gave it).
    middleware: Callable[[Wired], list[Middleware]] = _nothing
    # The routes a batch's line may take that are its own kind's (a Message Batch's
    # ``/v1/messages``), which an OpenAI batch may not name: route -> ``BatchEndpoint``.
    batch_routes: Callable[[Served], Mapping[str, Any]] = _no_routes
    # The upstream APIs it speaks (``UpstreamConfig.api`` -> "module:Class", imported only
    # when such an upstream is configured).
    upstreams: Mapping[str, str] = field(default_factory=dict)
    # Its local backends (models served here: a ``Backend`` each), built with the registry
    # when local models are served; each reached by its ids (``registry.backend_for``).
    local: Callable[[Settings, ModelEvents], list[Any]] = _no_backends
    # The most bytes a POST body of its paths may have, when not ``max_body_bytes`` (its
    # uploads: path -> bytes, a ``{...}`` segment any one segment; such a body is spooled to a
    # file when chunked, ``http/middleware.BodyLimit``).
    body_limits: Callable[[Settings], Mapping[str, int]] = _no_limits
    # Where its operations of the OpenAI document are answered when not by the core's rule
    # (``Answered``): sent upstream (a pure gateway's stateful families: ``gateway_forwards``),
    # kept from the default upstream, or kept on Connexion's whole way.
    answered: Callable[[Settings, dict, bool], Answered] = _as_the_core_says
    # Its Alembic revisions (a ``versions`` folder), in the one history with the core's.
    migrations: Path | None = None
    # Its settings (a ``FamilySettings``): read and checked when the app is built.
    settings: type[FamilySettings] | None = None
    # Its background tasks, started once the backends and the database are ready (the lifespan).
    start: Callable[[Services], list[asyncio.Task]] = _nothing
    # Its work ended, when the app stops: after every task is cancelled, in the reverse
    # order of ``FAMILIES`` (a later family may use an earlier one's work).
    stop: Callable[[Services], Awaitable[None]] | None = None
    # Its WebSocket endpoints: ASGI middleware added after the HTTP chain.
    sockets: Callable[[Wired], list[Middleware]] = _nothing
    # Its documents on the pages (``/docs/<name>``).
    pages: Callable[[Served], dict[str, Document]] = _no_pages
    # What must be done once the database is ready, before the first request is served.
    prepare: Callable[[Services], Awaitable[None]] | None = None


def migrations(families: Iterable[Family]) -> list[Path]:
    """The families' folders of revisions, for ``storage.Database`` (the app's, ``db upgrade``'s)."""
    return [family.migrations for family in families if family.migrations is not None]


def upstream_kinds(families: Iterable[Family]) -> dict[str, str]:
    """``UpstreamConfig.api`` -> "module:Class" of the upstream backends the families bring."""
    return {api: backend for family in families for api, backend in family.upstreams.items()}
