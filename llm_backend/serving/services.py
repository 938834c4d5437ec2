"""What serving code works with, built once per app: the settings, the model registry, the
database, and the metrics the HTTP layer keeps (``http/metrics.py``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ..backends.registry import ModelRegistry
from ..settings import Settings
from ..storage import Database


@dataclass
class Services:
    settings: Settings
    registry: ModelRegistry
    database: Database
    metrics: Any = None  # http/metrics.Metrics: the HTTP layer's, opaque down here
    # The embedding model (retrieval/embedding_model.py), a backend of the registry too, when
    # it is served: the retrieval engine embeds with it.
    embedding_model: Any = None
    # This process's batch runner (serving/batches/runner.py), once the app runs.
    batches: Any = None
    # The Realtime API's ephemeral client secrets (client_secrets.ClientSecrets).
    client_secrets: Any = None
    # Projects' per-model rate limits (http/project_limits.ProjectLimits), once the app runs.
    project_limits: Any = None
    # Spend: priced usage, hard limits and alerts (serving/admin/meter.SpendMeter).
    spend_meter: Any = None

    @functools.cached_property
    def retrieval(self) -> Any:
        """The embedder, searcher and indexer (``serving/retrieval.py``), built on first use:
        a pure gateway never imports numpy."""
        from .retrieval import Retrieval

        return Retrieval(self.settings, self.database, self.embedding_model)

    @functools.cached_property
    def reasoning_seal(self) -> Any:
        """What seals reasoning items' ``encrypted_content`` (``responses/reasoning.py``):
        a key derived from ``realtime_secret_key``, the server's sealing key."""
        from .responses.reasoning import ReasoningSeal

        key = self.settings.realtime_secret_key
        return ReasoningSeal(key.get_secret_value().encode() if key else None)

    @functools.cached_property
    def mcp(self) -> Any:
        """The way to remote MCP servers (``mcp/connector.Connector``), built on first use: the
        address policy and budgets of the settings."""
        from ..mcp.connector import Budgets, Connector
        from ..mcp.egress import ServerPolicy

        settings = self.settings
        policy = ServerPolicy(settings.mcp_allowed_servers, settings.mcp_public_servers)
        budgets = Budgets(settings.mcp_timeout, settings.mcp_max_bytes, settings.mcp_max_values, settings.mcp_max_tools)
        return Connector(policy, budgets)
