"""The thread every MCP connection runs in, with an event loop of its own, beside the
service's: the ``mcp`` package parses and validates each answer (pydantic) where it reads
it, holding the GIL for as long as the answer has values, and on the service's loop that
held every other request (2 MB of 60,000 content parts: 0.7 s). Here the loop goes on
answering meanwhile; what one parse may hold is bounded by ``mcp_max_values``.

The connections are I/O: one thread carries all of them. An operation cancelled on the
service's loop (a client gone, a response cancelled) is cancelled here too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "mcp") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name=self.name, daemon=True).start()
                self._loop = loop
            return self._loop

    async def run(self, operation: Coroutine[Any, Any, T]) -> T:
        """``operation``'s result (or exception), run to its end on this thread's loop."""
        future = asyncio.run_coroutine_threadsafe(operation, self._started())
        # Cancelling the wrapper cancels ``future``, and with it the task on this thread's loop.
        return await asyncio.wrap_future(future)
