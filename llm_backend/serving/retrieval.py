"""The retrieval engine of one app: the embedding model (loaded on first use, once per
process), the searcher with its in-memory vector caches, and the background indexer.

The embedding model is the served one (``backends/embedding/backend.py``) when there is one:
one llama context, so a search and an ``embeddings.create`` give the same vectors. With
``embedding_model`` set empty (not served under ``/v1/embeddings``) vector stores still
work: an unlisted instance of the same class embeds for them, so there is one loader.

Shared by the vector store operations and the ``file_search`` tool; built on first use
(``Services.retrieval``), so a pure gateway never imports numpy or loads the model.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ..backends.embedding.backend import EmbeddingModel
from ..retrieval.indexer import Indexer
from ..retrieval.indexing import Limits
from ..retrieval.search import Searcher
from ..settings import Settings
from ..storage import Database
from ..storage.files import FileStore

log = logging.getLogger(__name__)


class Retrieval:
    def __init__(self, settings: Settings, database: Database, embedding_model: EmbeddingModel | None = None) -> None:
        self.settings = settings
        self.database = database
        self.embedding_model = embedding_model or EmbeddingModel(settings)
        self.files_dir: Path = settings.data_dir / "files"
        self.searcher = Searcher(database, self.embed, settings.search_cache_bytes)
        limits = Limits(settings.file_search_max_file_bytes, settings.file_search_max_file_tokens)
        self.indexer = Indexer(
            database, self.files_dir, self.embedder, nice=settings.indexing_nice, limits=limits, open_files=settings.indexing_open_files
        )

    def embedder(self) -> Any:
        """The embedding model's embedder (all-MiniLM-L6-v2 on llama.cpp), loaded once (blocking)."""
        return self.embedding_model.embedder()

    def embed(self, texts: list[str]) -> Any:
        return self.embedding_model.embed(texts)

    def file_store(self) -> FileStore:
        return FileStore(self.database, self.files_dir)

    def sweep(self) -> None:
        """At start-up (blocking): remove upload leftovers (partial writes, bytes without a
        row) that no live process is writing (``storage/files.py``)."""
        removed = self.file_store().sweep_orphans()
        if removed:
            log.warning("removed %d orphan upload files", removed)

    async def keep(self, lease: float) -> None:
        """Run for the process's life: every third of ``lease``, renew the leases of the
        files this process will index, and take over the files whose lease ran out."""
        while True:
            try:
                await self.database.run(self.indexer.renew_leases)
                await self.database.run(self.indexer.take_over, lease)
            except Exception:
                log.exception("the vector store indexing leases could not be kept")
            await asyncio.sleep(lease / 3)

    def stop(self) -> None:
        self.indexer.stop()
