"""The real embedding model, loaded once per test session (its GGUF is built into a
temporary models directory the first time)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from llm_backend.retrieval.embedder import Embedder


@functools.lru_cache(maxsize=1)
def shared_embedder() -> Embedder:
    return Embedder.from_package(Path(tempfile.mkdtemp(prefix="llmb-embedder-")))
