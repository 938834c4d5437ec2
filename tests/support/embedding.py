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


WORDS = ["river", "mountain", "orbit", "lantern", "harvest", "copper", "violin", "glacier", "meadow", "thunder"]


def long_text(lines: int) -> str:
    """Text of about 33 tokens a line, words and numbers that do not repeat: embedding
    ``lines=120`` (4 000 tokens) takes a couple of seconds on one thread here."""
    return "\n".join(
        " ".join(WORDS[(line * 7 + i * 3) % len(WORDS)] + str(line * 31 + i) for i in range(12)) for line in range(lines)
    )
