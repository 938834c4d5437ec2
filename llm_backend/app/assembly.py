"""The app's parts, built once and in order, each from the ones before it: the models and
the database; what governs a request (its key, rate limits, project limits, spend); the
metrics every answer's usage reaches; then, once the documents are served, ``Services``,
frozen (``serving/services.py``). Nothing is set on any of them afterwards."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..auth import audit_key
from ..auth import Authenticator, Keyring, Principal
from ..backends.events import ModelEvents
from ..backends.registry import ModelRegistry
from ..auth.client_secrets import ClientSecrets
from ..families.family import Family, Served, migrations
from ..http import context, tracing
from ..http.batch_lines import BatchLines
from ..http.metrics import Metrics
from ..http.middleware import Observer
from ..http.project_limits import ProjectLimits
from ..http.key_limits import LimitedAuthenticator, RateLimits, counters_for
from ..http.refused_logins import RefusedLogins
from ..serving.batch_lines import Lines
from ..serving.metering.meter import SpendMeter
from ..serving.services import Services
from ..settings import Settings
from ..spec.batch_endpoints import batch_endpoints
from ..storage import Database, default_url
from ..storage.usage import Measured
from .model_registry import model_registry

if TYPE_CHECKING:
    from ..http.trace_export import Tracing
    from ..backends.embedding.backend import EmbeddingModel


@dataclass(frozen=True)
class Assembly:
    """What the app is built from, before its documents are served."""

    settings: Settings
    registry: ModelRegistry
    database: Database
    keyring: Keyring
    metrics: Metrics
    project_limits: ProjectLimits
    spend_meter: SpendMeter
    authenticator: LimitedAuthenticator
    traced: Tracing | None  # OpenTelemetry, when OTEL_* ask for it (http/tracing.py)

    def observer(self) -> Observer | None:
        """What watches every request: the metrics (when enabled), traced when OTEL_* ask."""
        observer = self.metrics if self.settings.metrics_enabled else None
        return self.traced.traced(observer) if self.traced is not None else observer

    def services(self, batch_lines: Callable[[Services], Lines], objectless_answers: frozenset[str]) -> Services:
        """The services serving code works with; ``batch_lines``: how a batch's line is
        answered, and ``objectless_answers`` (``claims.objectless_operations``): both
        need the documents as served, so they come last."""
        signing = self.settings.realtime_secret_key
        return Services(
            settings=self.settings,
            registry=self.registry,
            database=self.database,
            metrics=self.metrics,
            embedding_model=_embedding_model(self.registry),
            client_secrets=ClientSecrets(signing.get_secret_value().encode() if signing else None),
            project_limits=self.project_limits,
            spend_meter=self.spend_meter,
            batch_lines=batch_lines,
            objectless_answers=objectless_answers,
        )


def assemble(settings: Settings, families: Sequence[Family]) -> Assembly:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = model_registry(settings, ModelEvents(), families)
    database = Database(
        settings.database_url or default_url(settings.data_dir), audit_key=audit_key.of(settings),
        migrations=migrations(families),
    )
    database.usage.flush_interval = settings.usage_flush_seconds
    database.admin_snapshot.refresh_seconds = settings.control_plane_refresh_seconds
    rate_limits = RateLimits(settings, database.api_keys.limits, counters_for(settings, database))
    project_limits = ProjectLimits(database)
    # A request's hold against a hard spend limit is on its record (project_limits.hold_spend).
    spend_meter = SpendMeter(settings, database, current_hold=lambda: context.record().spend_hold)
    traced = tracing.start(registry)
    listeners: list[Callable[[Principal, str, Measured], None]] = [rate_limits.spend, project_limits.spend, spend_meter.spend]
    if traced is not None:
        listeners.append(tracing.spend)
    metrics = Metrics(registry, database, listeners, usage=database.usage if settings.usage_enabled else None)
    keyring = Keyring.of(settings)
    authenticator = LimitedAuthenticator(
        Authenticator(keyring, database.api_keys, database.projects, RefusedLogins(database)),
        rate_limits,
        quota=spend_meter.admit,
    )
    return Assembly(settings, registry, database, keyring, metrics, project_limits, spend_meter, authenticator, traced)


def batch_lines(
    served: Served, observer: Observer | None, authenticator: LimitedAuthenticator, families: Sequence[Family],
) -> Callable[[Services], Lines]:
    """How this app answers a batch's line: by the same routes and controllers as a request
    (http/batch_lines.py), each line admitted as its batch's key's request (the key, its
    project, the spend limits); the families' own kinds of batch by their own routes."""
    endpoints = batch_endpoints(served.body_operations, served.base_path)
    routes = {route: endpoint for family in families for route, endpoint in family.batch_routes(served).items()}
    return functools.partial(
        BatchLines, endpoints=endpoints, base_path=served.base_path, observer=observer, authenticator=authenticator,
        family_routes=routes,
    )


def _embedding_model(registry: ModelRegistry) -> EmbeddingModel | None:
    """The embedding model, when served (a local backend): ``Services`` hands its one instance
    to whatever embeds besides ``/v1/embeddings`` (``backends/embedding/``)."""
    from ..backends.embedding.backend import EmbeddingModel

    return next((backend for backend in registry.local if isinstance(backend, EmbeddingModel)), None)
