"""The background indexing of vector store files: one thread, small batches, tenants in turn.

A file added to a store is ``in_progress`` at once (the request returns); this thread
indexes the queued files off the request path. Bounded by construction: one thread (the
embedder has one llama context, one CPU thread), and the queue holds only ids (file bytes
are read when their turn comes).

Tenants take turns (issue #39: a 30 MB text file of tenant A, rightly indexing for minutes,
held tenant B's 27-byte file ``in_progress`` for more than 90 s, first come first served):
each tenant's files are indexed in the order they came, one at a time, and the thread works
one batch of chunks (``tokens_per_batch``, ~0.4 s) on one tenant's file, then one on the
next tenant's. So a small file waits about a batch of each other tenant's per batch of its
own, whatever they queued. At most ``open_files`` files (one per tenant) are indexed at
once, each holding its chunks and vectors until they are saved (bounded by the file_search
limits: ~85 MB for a 30 MB text file); a tenant beyond them waits for one of them to end.

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

import collections
import logging
import os
import queue
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from .chunking import ChunkingStrategy
from .indexing import Limits, index_steps

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # owner, vector store id, file id
TOKENS_PER_BATCH = 1024
OPEN_FILES = 4
Steps = Generator[None, None, str]


class Indexer:
    def __init__(
        self,
        database: Any,
        files_dir: Path,
        embedder: Callable[[], Any],
        nice: int = 10,
        tokens_per_batch: int = TOKENS_PER_BATCH,
        limits: Limits = Limits(),
        open_files: int = OPEN_FILES,
    ) -> None:
        self._database = database
        self._limits = limits
        self._files_dir = Path(files_dir)
        self._embedder = embedder
        self._nice = nice
        self._tokens_per_batch = tokens_per_batch
        self._queue: queue.Queue[Key | None] = queue.Queue()
        self._open_files = open_files
        # The indexing thread's own: each tenant's files waiting (in order), the tenants in
        # turn, and the file each is indexing with its steps (``index_steps``).
        self._waiting: dict[str, collections.deque[Key]] = {}
        self._turns: collections.deque[str] = collections.deque()
        self._open: dict[str, tuple[Key, Steps]] = {}
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
        """Stop after the batch being embedded (the files being indexed stay ``in_progress``:
        a live process takes them over once their lease runs out)."""
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
        try:
            while not self._stopping.is_set() and self._take(block=not self._turns):
                self._step()
        finally:
            for _, steps in self._open.values():
                steps.close()  # stopped: the file stays in_progress until its lease runs out

    def _take(self, block: bool) -> bool:
        """Move the submitted files into their tenants' lines (waiting for one when
        ``block``); False once ``stop`` was asked."""
        while True:
            try:
                key = self._queue.get(block)
            except queue.Empty:
                return True
            if key is None:
                return False
            owner = key[0]
            if owner not in self._waiting:
                self._waiting[owner] = collections.deque()
                self._turns.append(owner)
            self._waiting[owner].append(key)
            block = False

    def _step(self) -> None:
        """One slice of the next tenant's file (opened now if it has none and there is room)."""
        owner = self._turns[0]
        self._turns.rotate(-1)
        if owner not in self._open:
            if len(self._open) >= self._open_files:
                return  # its turn comes again, and a place once a file ends
            key = self._waiting[owner].popleft()
            try:
                steps = self._steps(*key)
            except Exception:
                log.exception("a vector store file could not be started", extra={"file_id": key[2]})
                steps = None
            if steps is None:
                self._done(owner, key)
                return
            self._open[owner] = (key, steps)
        key, steps = self._open[owner]
        try:
            next(steps)
            return
        except StopIteration as ended:
            log.info("vector store file indexed", extra={"file_id": key[2], "vector_store_id": key[1], "status": ended.value})
        except Exception:  # one file's failure must not stop the others
            log.exception("indexing a vector store file failed", extra={"file_id": key[2]})
        del self._open[owner]
        self._done(owner, key)

    def _done(self, owner: str, key: Key) -> None:
        with self._lock:
            self._pending.discard(key)
        self.indexed += 1
        if not self._waiting[owner] and owner not in self._open:
            del self._waiting[owner]
            self._turns.remove(owner)

    def _steps(self, owner: str, store_id: str, file_id: str) -> Steps | None:
        """The steps of indexing a queued file; None when there is nothing to do."""
        stores = self._database.vector_stores
        job = stores.job(owner, store_id, file_id)
        if job is None:
            return None  # removed, cancelled or already indexed meanwhile
        strategy = _strategy(job.chunking_strategy)
        path = self._files_dir / job.path
        if not path.is_file():
            self._database.vector_index.mark_failed(owner, store_id, file_id, "server_error", "The file's bytes could not be read.", True)
            return None

        def keep_going() -> bool:
            return not self._stopping.is_set() and stores.job(owner, store_id, file_id) is not None

        return index_steps(
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


def _strategy(shown: dict) -> ChunkingStrategy:
    static = (shown or {}).get("static") or {}
    if "max_chunk_size_tokens" in static:
        return ChunkingStrategy(static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])
    return ChunkingStrategy()
