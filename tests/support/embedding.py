"""The real embedding model, loaded once per test process. Its GGUF is built into the run's
shared models folder (tests/support/server.py: removed when the run ends, and built once for
every process of the run), not a temporary folder of each process's own, which was left in
/tmp after every run (87 MB a process)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from llm_backend.backends.embedding.embedder import Embedder
from tests.support.server import shared_caches


@functools.lru_cache(maxsize=1)
def shared_embedder() -> Embedder:
    models = shared_caches().get("LLM_BACKEND_MODELS_DIR") or tempfile.mkdtemp(prefix="llmb-embedder-")
    return Embedder.from_package(Path(models))


WORDS = ["river", "mountain", "orbit", "lantern", "harvest", "copper", "violin", "glacier", "meadow", "thunder"]


def long_text(lines: int) -> str:
    """Text of about 33 tokens a line, words and numbers that do not repeat: embedding
    ``lines=120`` (4 000 tokens) takes a couple of seconds on one thread here."""
    return "\n".join(
        " ".join(WORDS[(line * 7 + i * 3) % len(WORDS)] + str(line * 31 + i) for i in range(12)) for line in range(lines)
    )
