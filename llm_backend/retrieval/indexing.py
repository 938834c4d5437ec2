"""One file into one vector store: extract, chunk, embed, save; or record why not.

Blocking (CPU-bound embedding and database writes): run it in a worker thread or process,
one file at a time per embedder. The outcome is always a final status: ``completed`` with
all chunks written in one transaction, or ``failed`` with ``last_error`` (``unsupported_file``
or ``invalid_file`` for what extraction refuses or the file_search limits, ``server_error``
for anything else).

A file streams through (issue #33: a 30 MB text file read and tokenized whole took the API
process to 4.9 GB): its text a piece at a time, chunked as it comes, embedded a batch at a
time; only the chunks and their vectors are held until they are saved, and OpenAI's
file_search limits bound those: 512 MB and 5,000,000 tokens a file (``Limits``), checked as
the file is read, so a file over them stops there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from ..storage.vector_index import NewChunk
from .chunking import AUTO, Chunk, ChunkingStrategy, TooManyTokens, chunk_stream
from .extraction import ExtractionError, kind_of, text_pieces

log = logging.getLogger(__name__)
# Chunks embedded per call without a batch size given (the embedder's own batching does the rest).
DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Limits:
    """OpenAI's file_search limits per file (the ``file_search_max_file_*`` settings)."""

    max_bytes: int = 512 * 1024 * 1024
    max_tokens: int = 5_000_000


def _batches(chunks: Iterator[Chunk], size: int) -> Iterator[list[Chunk]]:
    while batch := list(islice(chunks, size)):
        yield batch


def _size(source: Path | bytes) -> int:
    return source.stat().st_size if isinstance(source, Path) else len(source)


def index_file(*args: Any, **kwargs: Any) -> str:
    """``index_steps`` run to its end: the final status."""
    steps = index_steps(*args, **kwargs)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def index_steps(
    database: Any,
    embedder: Any,
    owner: str,
    vector_store_id: str,
    file_id: str,
    source: Path | bytes,
    filename: str,
    mime_type: str | None = None,
    strategy: ChunkingStrategy = AUTO,
    batch_chunks: int | None = None,
    keep_going: Callable[[], bool] | None = None,
    limits: Limits = Limits(),
) -> Generator[None, None, str]:
    """Index ``source`` (the file's path, or its bytes) as ``file_id`` of the store (already
    added ``in_progress``), one slice of work per step (a batch of chunks embedded); the
    final status is the generator's value. Chunks are embedded ``batch_chunks`` at a time
    and ``keep_going`` is asked between batches: when it says stop, nothing is written and
    the answer is ``stopped``. With ``keep_going``, only a file still ``in_progress`` is saved.
    Between steps the indexer serves other tenants' files (``indexer.py``)."""
    index = database.vector_index
    guarded = keep_going is not None

    def failed(code: str, message: str) -> str:
        index.mark_failed(owner, vector_store_id, file_id, code, message, only_in_progress=guarded)
        return "failed"

    try:
        kind_of(filename, mime_type)
    except ExtractionError as exc:
        return failed("unsupported_file", str(exc))
    if _size(source) > limits.max_bytes:
        return failed("invalid_file", f"The file is larger than {limits.max_bytes} bytes, the most file_search indexes.")
    new_chunks: list[NewChunk] = []
    usage = 0  # what the index holds: the chunk text (overlaps counted) and the vectors
    try:
        pieces = text_pieces(source, filename, mime_type)
        chunks = chunk_stream(pieces, embedder.tokenize, strategy, max_tokens=limits.max_tokens)
        for number, batch in enumerate(_batches(chunks, batch_chunks or DEFAULT_BATCH)):
            if number:
                yield  # between two batches; a file of one batch is saved in its first step
            if keep_going is not None and not keep_going():
                return "stopped"
            vectors = embedder.embed([chunk.text for chunk in batch])
            new_chunks.extend(NewChunk(chunk.text, chunk.n_tokens, vector) for chunk, vector in zip(batch, vectors))
            usage += sum(len(chunk.text.encode()) for chunk in batch) + int(vectors.nbytes)
    except ExtractionError as exc:
        return failed("invalid_file", str(exc))
    except TooManyTokens:
        return failed("invalid_file", f"The file has more than {limits.max_tokens} tokens, the most file_search indexes.")
    except Exception as exc:  # an engine failure must fail the file, not the indexer
        log.exception("indexing failed", extra={"file_id": file_id, "vector_store_id": vector_store_id})
        return failed("server_error", f"Indexing failed: {type(exc).__name__}")
    if not index.save_chunks(owner, vector_store_id, file_id, new_chunks, usage, only_in_progress=guarded):
        return "stopped"
    return "completed"
