"""What search keeps in memory per vector store: its vectors as one matrix and its files,
each valid while the store's ``generation`` holds, bounded in bytes.

Unbounded before (found in a review: a deleted store's matrix stayed for the process's
life, and every store ever searched stayed too). Now the least recently used entries go
first once ``max_bytes`` is passed (``search_cache_bytes``: 256 MB by default, about
170 000 chunks of 384 floats), a store deleted here is dropped at once, and one larger
than the whole budget is used for its search without being kept. Thread-safe: searches
run in worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

Key = tuple[str, int]  # (what, store seq)


class StoreCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Key, tuple[int, Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, what: str, store_seq: int, generation: int) -> Any | None:
        """The value kept for this store at this generation (now the most recently used)."""
        with self._lock:
            entry = self._entries.get((what, store_seq))
            if entry is None or entry[0] != generation:
                return None
            self._entries.move_to_end((what, store_seq))
            return entry[1]

    def put(self, what: str, store_seq: int, generation: int, value: Any, size: int) -> None:
        with self._lock:
            self._drop((what, store_seq))
            if size > self.max_bytes:
                return
            self._entries[what, store_seq] = (generation, value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def forget(self, store_seq: int) -> None:
        """Everything kept for the store (deleted)."""
        with self._lock:
            for key in [key for key in self._entries if key[1] == store_seq]:
                self._drop(key)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]
