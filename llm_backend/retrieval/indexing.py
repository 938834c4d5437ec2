"""One file into one vector store: extract, chunk, embed, save; or record why not.

Blocking (CPU-bound embedding and database writes): run it in a worker thread or process,
one file at a time per embedder. The outcome is always a final status: ``completed`` with
all chunks written in one transaction, or ``failed`` with ``last_error`` (``unsupported_file``
or ``invalid_file`` for what extraction refuses, ``server_error`` for anything else).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..storage.vector_index import NewChunk
from .chunking import AUTO, ChunkingStrategy, chunk_text
from .extraction import ExtractionError, extract_text, kind_of

if TYPE_CHECKING:  # numpy is imported where it is used: the API process starts without it (issue #27)
    import numpy as np

log = logging.getLogger(__name__)


def _embed(embedder: Any, texts: list[str], batch: int | None, keep_going: Callable[[], bool] | None) -> np.ndarray | None:
    """The texts' vectors, ``batch`` texts per call (the embedder is free between calls, for
    a search's query); None as soon as ``keep_going`` says stop."""
    import numpy as np

    if not batch or len(texts) <= batch:
        return embedder.embed(texts)
    parts = []
    for start in range(0, len(texts), batch):
        if keep_going is not None and not keep_going():
            return None
        parts.append(embedder.embed(texts[start : start + batch]))
    return np.concatenate(parts)


def index_file(
    database: Any,
    embedder: Any,
    owner: str,
    vector_store_id: str,
    file_id: str,
    data: bytes,
    filename: str,
    mime_type: str | None = None,
    strategy: ChunkingStrategy = AUTO,
    batch_chunks: int | None = None,
    keep_going: Callable[[], bool] | None = None,
) -> str:
    """Index ``data`` as ``file_id`` of the store (already added ``in_progress``); the final
    status. With ``batch_chunks``, chunks are embedded that many at a time and
    ``keep_going`` is asked between batches: when it says stop, nothing is written and the
    answer is ``stopped``. With ``keep_going``, only a file still ``in_progress`` is saved."""
    index = database.vector_index
    guarded = keep_going is not None
    try:
        kind_of(filename, mime_type)
    except ExtractionError as exc:
        index.mark_failed(owner, vector_store_id, file_id, "unsupported_file", str(exc), only_in_progress=guarded)
        return "failed"
    try:
        text = extract_text(data, filename, mime_type)
        chunks = chunk_text(text, embedder.tokenize, strategy)
        vectors = _embed(embedder, [chunk.text for chunk in chunks], batch_chunks, keep_going)
    except ExtractionError as exc:
        index.mark_failed(owner, vector_store_id, file_id, "invalid_file", str(exc), only_in_progress=guarded)
        return "failed"
    except Exception as exc:  # an engine failure must fail the file, not the indexer
        log.exception("indexing failed", extra={"file_id": file_id, "vector_store_id": vector_store_id})
        index.mark_failed(
            owner, vector_store_id, file_id, "server_error", f"Indexing failed: {type(exc).__name__}", only_in_progress=guarded
        )
        return "failed"
    if vectors is None:
        return "stopped"
    new_chunks = [NewChunk(chunk.text, chunk.n_tokens, vector) for chunk, vector in zip(chunks, vectors)]
    # Usage is what the index holds: the chunk text (overlaps counted) and the vectors.
    usage = sum(len(chunk.text.encode()) for chunk in chunks) + int(vectors.nbytes)
    if not index.save_chunks(owner, vector_store_id, file_id, new_chunks, usage, only_in_progress=guarded):
        return "stopped"
    return "completed"
