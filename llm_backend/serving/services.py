"""What serving code works with, built once per app: the settings, the model registry, the
database, and the metrics the HTTP layer keeps (``http/metrics.py``)."""

from __future__ import annotations

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
    # Retrieval (local models only): the embedding model (retrieval/embedding_model.py, also a
    # backend of the registry) and the one Searcher over the vector stores (its caches).
    embedding_model: Any = None
    searcher: Any = None
