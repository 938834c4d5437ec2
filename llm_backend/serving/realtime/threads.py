"""Work sized by what a Realtime client sends, done beside the event loop: its large events
parsed and checked, its audio decoded, resampled and judged by the VAD, its turns written
to disk. 8 MB frames of silence cost 0.7 s each on the loop, and five of them held every
other request (``/health``) for 3 s (issue #39).

Threads of their own, as many as the cores: numpy and onnxruntime let go of the GIL while
they work, so the loop answers meanwhile; a flood of one session waits behind its own work
(its events are handled one after the other), never the loop, and never the threads the
rest of the service uses (``asyncio.to_thread``'s pool: the database, file I/O).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None


async def off_loop(work: Callable[..., T], *args: object) -> T:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="realtime")
    return await asyncio.get_running_loop().run_in_executor(_pool, work, *args)


def _trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its allocator returns memory its own way
        pass


async def give_back_memory() -> None:
    """Hand the memory a closed session freed back to the system. glibc keeps freed memory
    for reuse (above all in worker threads' arenas, where large events are parsed): three
    closed sessions left their 109 MiB resident until this (``malloc_trim``: a few ms,
    beside the loop)."""
    await off_loop(_trim)
