"""What serving code works with, built once per app (``app/assembly.py``) and never changed
after: the settings, the model registry, the database, and the services the app builds from
them. What the HTTP layer builds (its metrics, projects' per-model limits) is known down
here only by what serving code asks of it (the Protocols below): this layer imports none of
the layers above it (tests/unit/test_layers.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..auth import Principal
from ..backends.registry import ModelRegistry
from ..auth.client_secrets import ClientSecrets
from ..settings import Settings
from ..storage import Database

if TYPE_CHECKING:
    from ..mcp.connector import Connector
    from ..backends.embedding.backend import EmbeddingModel
    from .batch_lines import Lines
    from .batches.runner import BatchRunner
    from .metering.meter import SpendMeter
    from .responses.reasoning import ReasoningSeal
    from .retrieval import Retrieval


T = TypeVar("T")


def required(part: T | None, name: str) -> T:
    """A part of the services that the app always builds (``app/assembly.py``), None only
    where a test built fewer: the part, or a RuntimeError naming it."""
    if part is None:
        raise RuntimeError(f"these services were built without {name} (app/assembly.py builds them)")
    return part


class TokenCounter(Protocol):
    """The metrics (``http/metrics.Metrics``): the one usage-recording interface."""

    def count_tokens(self, model: str, usage: dict, family: str | None = None) -> None: ...

    def response(self) -> object:
        """The text exposition of every metric (an HTTP response)."""
        ...


class ModelLimiter(Protocol):
    """Projects' per-model rate limits (``http/project_limits.ProjectLimits``)."""

    async def admit(self, principal: Principal, model: str, audio_bytes: int = 0, images: int = 0) -> None: ...


@dataclass(frozen=True, eq=False)
class Services:
    settings: Settings
    registry: ModelRegistry
    database: Database
    metrics: TokenCounter | None = None
    # The embedding model (backends/embedding/backend.py), a backend of the registry too, when
    # it is served: file search and indexing embed with its one instance.
    embedding_model: EmbeddingModel | None = None
    # The Realtime API's ephemeral client secrets.
    client_secrets: ClientSecrets | None = None
    project_limits: ModelLimiter | None = None
    # Spend: priced usage, hard limits and alerts (serving/metering/meter.py).
    spend_meter: SpendMeter | None = None
    # The operations whose answers hold no object the tenant guard records (ownership.py).
    objectless_answers: frozenset[str] = frozenset()
    # How this app answers a batch's line (http/batch_lines.BatchLines): given these
    # services, since a line is served as a request of this app is (see ``batches``).
    batch_lines: Callable[[Services], Lines] | None = None

    @functools.cached_property
    def batches(self) -> BatchRunner:
        """This process's batch runner (``serving/batches/runner.py``), built on first use
        (the lifespan starts it): its lines are served with these very services, so it can
        only be built once they exist."""
        from .batches.runner import BatchRunner

        return BatchRunner(self, required(self.batch_lines, "batch lines")(self))

    @functools.cached_property
    def retrieval(self) -> Retrieval:
        """The embedder, searcher and indexer (``serving/retrieval.py``), built on first use:
        a pure gateway never imports numpy."""
        from .retrieval import Retrieval

        return Retrieval(self.settings, self.database, self.embedding_model)

    @functools.cached_property
    def reasoning_seal(self) -> ReasoningSeal:
        """What seals reasoning items' ``encrypted_content`` (``responses/reasoning.py``):
        a key derived from ``realtime_secret_key``, the server's sealing key."""
        from .responses.reasoning import ReasoningSeal

        key = self.settings.realtime_secret_key
        return ReasoningSeal(key.get_secret_value().encode() if key else None)

    @functools.cached_property
    def mcp(self) -> Connector:
        """The way to remote MCP servers (``mcp/connector.Connector``), built on first use: the
        address policy and budgets of the settings."""
        from ..mcp.connector import Budgets, Connector
        from ..mcp.egress import ServerPolicy

        settings = self.settings
        policy = ServerPolicy(settings.mcp_allowed_servers, settings.mcp_public_servers)
        budgets = Budgets(settings.mcp_timeout, settings.mcp_max_bytes, settings.mcp_max_values, settings.mcp_max_tools)
        return Connector(policy, budgets)
