"""The background indexing of vector store files: one queue, one thread, small batches.

A file added to a store is ``in_progress`` at once (the request returns); this thread
indexes the queued files one at a time, off the request path. Bounded by construction:
one thread (the embedder has one llama context, one CPU thread), and the queue holds
only ids (file bytes are read when their turn comes).

Chat generation must not starve: the thread lowers its own scheduling priority (Linux
``nice`` is per thread; +10 by default, relative to the process), so on a busy machine the
engine workers' decoding threads run first; and it embeds a few chunks per call (about 1 000 tokens, ~0.4 s on one
core), so a search waiting for the embedder waits at most one batch. Measured on the
shared 2-core machine (bench/indexing_ttft.py): at the same priority, indexing doubled chat's
time to first token (p50 2.1 s idle ⇒ 4.4 s); niced +10, it did not change it (0.97 s ⇒
0.94 s) and indexing took twice as long. docs/RETRIEVAL.md has the table.

Recovery: the files a process will index (queued or being indexed) are leased to it, as
background responses are (``renew_leases`` every third of the lease, from the app's
event loop: ``serving/retrieval.py``); a file left ``in_progress`` whose lease ran out (a
kill -9 mid-indexing, here or on another replica) is taken over by a live process
(``take_over``: at start-up and then every third of the lease), and a file a live replica
holds is never taken. A file's chunks are written in one transaction with its
``completed`` status, so a killed indexing leaves no partial chunks to clean.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .chunking import ChunkingStrategy
from .indexing import Limits, index_file

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # owner, vector store id, file id
TOKENS_PER_BATCH = 1024


class Indexer:
    def __init__(
        self,
        database: Any,
        files_dir: Path,
        embedder: Callable[[], Any],
        nice: int = 10,
        tokens_per_batch: int = TOKENS_PER_BATCH,
        limits: Limits = Limits(),
    ) -> None:
        self._database = database
        self._limits = limits
        self._files_dir = Path(files_dir)
        self._embedder = embedder
        self._nice = nice
        self._tokens_per_batch = tokens_per_batch
        self._queue: queue.Queue[Key | None] = queue.Queue()
        self._pending: set[Key] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.indexed = 0  # files finished (any outcome) since start, for tests and logs

    def submit(self, owner: str, vector_store_id: str, file_id: str) -> None:
        """Queue a file of a store (``in_progress``) for indexing; the thread starts on the
        first submission."""
        key = (owner, vector_store_id, file_id)
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="vector-store-indexer", daemon=True)
                self._thread.start()
        self._queue.put(key)

    def take_over(self, lease: float) -> int:
        """Claim and queue the files ``in_progress`` whose lease ran out (not renewed for
        ``lease`` seconds by the database's clock: their process is gone); how many."""
        jobs = self._database.vector_stores.claim_lapsed(lease)
        for owner, store_id, file_id in jobs:
            self.submit(owner, store_id, file_id)
        if jobs:
            log.warning("took over %d vector store files left in_progress", len(jobs))
        return len(jobs)

    def renew_leases(self) -> None:
        """Renew the lease of every file this process holds (queued or being indexed)."""
        with self._lock:
            held = list(self._pending)
        if held:
            self._database.vector_stores.renew_leases(held)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the file being indexed (it stays ``in_progress`` if cut short: a live
        process takes it over once its lease runs out)."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            thread = threading.get_native_id()
            # Relative to the process's own niceness: ``nice`` steps below the chat's threads.
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + self._nice))
        except (OSError, AttributeError):  # not Linux, or not allowed: run at normal priority
            pass
        while not self._stopping.is_set():
            key = self._queue.get()
            if key is None:
                break
            try:
                self._index(*key)
            except Exception:  # one file's failure must not stop the queue
                log.exception("indexing a vector store file failed", extra={"file_id": key[2]})
            finally:
                with self._lock:
                    self._pending.discard(key)
                self.indexed += 1

    def _index(self, owner: str, store_id: str, file_id: str) -> None:
        stores = self._database.vector_stores
        job = stores.job(owner, store_id, file_id)
        if job is None:
            return  # removed, cancelled or already indexed meanwhile
        strategy = _strategy(job.chunking_strategy)
        path = self._files_dir / job.path
        if not path.is_file():
            self._database.vector_index.mark_failed(owner, store_id, file_id, "server_error", "The file's bytes could not be read.", True)
            return

        def keep_going() -> bool:
            return not self._stopping.is_set() and stores.job(owner, store_id, file_id) is not None

        status = index_file(
            self._database,
            self._embedder(),
            owner,
            store_id,
            file_id,
            path,
            job.filename,
            job.mime_type,
            strategy,
            batch_chunks=max(1, self._tokens_per_batch // strategy.max_chunk_size_tokens),
            keep_going=keep_going,
            limits=self._limits,
        )
        log.info("vector store file indexed", extra={"file_id": file_id, "vector_store_id": store_id, "status": status})


def _strategy(shown: dict) -> ChunkingStrategy:
    static = (shown or {}).get("static") or {}
    if "max_chunk_size_tokens" in static:
        return ChunkingStrategy(static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])
    return ChunkingStrategy()
