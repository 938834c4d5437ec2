"""One file into one vector store: extract, chunk, embed, save; or record why not.

Blocking (CPU-bound embedding and database writes): run it in a worker thread or process,
one file at a time per embedder. The outcome is always a final status: ``completed`` with
all chunks written in one transaction, or ``failed`` with ``last_error`` (``unsupported_file``
or ``invalid_file`` for what extraction refuses, ``server_error`` for anything else).
"""

from __future__ import annotations

import logging
from typing import Any

from ..storage.vector_index import NewChunk
from .chunking import AUTO, ChunkingStrategy, chunk_text
from .extraction import ExtractionError, extract_text, kind_of

log = logging.getLogger(__name__)


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
) -> str:
    """Index ``data`` as ``file_id`` of the store (already added ``in_progress``); the final
    status."""
    index = database.vector_index
    try:
        kind_of(filename, mime_type)
    except ExtractionError as exc:
        index.mark_failed(owner, vector_store_id, file_id, "unsupported_file", str(exc))
        return "failed"
    try:
        text = extract_text(data, filename, mime_type)
        chunks = chunk_text(text, embedder.tokenize, strategy)
        vectors = embedder.embed([chunk.text for chunk in chunks])
    except ExtractionError as exc:
        index.mark_failed(owner, vector_store_id, file_id, "invalid_file", str(exc))
        return "failed"
    except Exception as exc:  # an engine failure must fail the file, not the indexer
        log.exception("indexing failed", extra={"file_id": file_id, "vector_store_id": vector_store_id})
        index.mark_failed(owner, vector_store_id, file_id, "server_error", f"Indexing failed: {type(exc).__name__}")
        return "failed"
    new_chunks = [NewChunk(chunk.text, chunk.n_tokens, vector) for chunk, vector in zip(chunks, vectors)]
    # Usage is what the index holds: the chunk text (overlaps counted) and the vectors.
    usage = sum(len(chunk.text.encode()) for chunk in chunks) + int(vectors.nbytes)
    index.save_chunks(owner, vector_store_id, file_id, new_chunks, usage)
    return "completed"
