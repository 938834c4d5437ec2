"""A model's low-priority engine: batch lines decode here, never beside interactive requests.

An engine decodes all its running sequences in one step, so a request admitted beside batch
lines waits for their step and then shares it, whatever the order of admission. Measured
on the 2-core VM (SmolLM2, streamed chat TTFT p50, loaded machine): 80 ms alone, 162 / 312
/ 368 ms with 1 / 2 / 3 batch-like requests in the same engine's sequences; with 4 such
requests on a second engine process at niceness 19 instead, 107-253 ms against 122-288 ms
alone in the same run (within the noise). In a process of its own at the lowest CPU
priority, batch work takes the cores whenever interactive work leaves them idle, and the
kernel hands them back at once when it does not.

One worker process with the model's engine configuration (its weights are mmapped: shared
with the interactive engine through the page cache; its KV cache is its own), started by
the first batch line and stopped after ``IDLE_SECONDS`` without one. Its own admission:
``parallel`` sequences, taken in order of arrival (the batch runner bounds how many wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from .worker_process import WorkerProcess

log = logging.getLogger(__name__)

IDLE_SECONDS = 60.0


class BackgroundEngine:
    def __init__(self, name: str, nice: int, start_timeout: float, memory_limit: int | None = None) -> None:
        self.name = name
        self.nice = nice
        self.memory_limit = memory_limit
        self.start_timeout = start_timeout
        self.config: dict[str, Any] | None = None  # the model's engine config, once it started
        self.worker: WorkerProcess | None = None
        self._starting = asyncio.Lock()
        self._sequences = asyncio.Condition()
        self._in_use = 0
        self._users = 0
        self._idle: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Future | None = None  # the idle stop under way (a strong reference)

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config

    @contextlib.asynccontextmanager
    async def take(self, need: int) -> AsyncIterator[WorkerProcess]:
        """``need`` sequences of the engine (0: an embedding, run between two steps),
        starting it if it is not running."""
        self._users += 1
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        try:
            worker = await self._started()
            parallel = int(worker.config.get("parallel", 1))  # the running engine's
            async with self._sequences:
                await self._sequences.wait_for(lambda: self._in_use + need <= parallel)
                self._in_use += need
            try:
                yield worker
            finally:
                async with self._sequences:
                    self._in_use -= need
                    self._sequences.notify_all()
        finally:
            self._users -= 1
            if not self._users:
                self._idle = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._stop_when_idle)

    async def _started(self) -> WorkerProcess:
        async with self._starting:
            if self.worker is None:
                if self.config is None:
                    raise RuntimeError(f"{self.name}: the model has not started")
                worker = WorkerProcess(self.name, self.config, self.start_timeout, nice=self.nice, memory_limit=self.memory_limit)
                await worker.start()
                self.worker = worker
                log.info("low-priority engine started", extra={"model": self.name, "nice": self.nice})
        return self.worker

    def _stop_when_idle(self) -> None:
        self._idle = None
        self._stopping = asyncio.ensure_future(self._stop_if_unused())

    async def _stop_if_unused(self) -> None:
        async with self._starting:
            if self._users or self.worker is None:
                return
            worker, self.worker = self.worker, None
        await worker.stop()
        log.info("low-priority engine stopped: idle", extra={"model": self.name})

    async def stop(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        async with self._starting:
            worker, self.worker = self.worker, None
            if worker is not None:
                await worker.stop()
