"""Loading and unloading one model at runtime.

The rules, for every backend whose models take memory:
- a request for a model that is not loaded starts the load and waits for it (bounded); any
  number of concurrent first requests share that one load;
- an unload waits for the requests in flight on the model, then frees it; a request that
  arrives meanwhile, or later, loads it again (an unload frees memory, it does not disable
  the model);
- a failed load leaves the model in ``error``; the next request or admin load tries again.
Load and unload never overlap: they take turns on one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import Enum
from typing import Any

from .. import errors
from .events import ModelEvents

log = logging.getLogger(__name__)


class ModelState(str, Enum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    UNLOADING = "unloading"
    ERROR = "error"


class Lifecycle:
    """The state of one model and the one place that changes it."""

    def __init__(
        self,
        model_id: str,
        load: Callable[[], Awaitable[None]],
        unload: Callable[[], Awaitable[None]],
        events: ModelEvents,
    ) -> None:
        self.model_id = model_id
        self._load_model = load
        self._unload_model = unload
        self._events = events
        self.state = ModelState.UNLOADED
        self.error: str | None = None
        self.loaded_at: int | None = None
        self.loads = 0  # completed loads, for the admin listing
        self._turn = asyncio.Lock()
        self._loading: asyncio.Task | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def ready(self) -> bool:
        return self.state is ModelState.READY

    def _enter(self, state: ModelState, **details: Any) -> None:
        self.state = state
        if state is not ModelState.UNLOADING:
            self._events.publish(state.value, self.model_id, **details)

    def load(self) -> asyncio.Task:
        """Start loading unless a load is under way; returns the task everyone waits on."""
        if self._loading is None or self._loading.done():
            self._loading = asyncio.create_task(self._load(), name=f"load {self.model_id}")
            # Whoever needs the outcome awaits the task; this keeps an unawaited failure
            # (an eager load at startup) from being reported as "never retrieved".
            self._loading.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self._loading

    async def _load(self) -> None:
        async with self._turn:
            if self.state is ModelState.READY:
                return
            self.error = None
            self._enter(ModelState.LOADING)
            started = time.perf_counter()
            try:
                await self._load_model()
            except BaseException as exc:
                # Free whatever half-started (some workers may be up), then report.
                with contextlib.suppress(Exception):
                    await self._unload_model()
                if isinstance(exc, Exception):
                    self.error = str(exc) or type(exc).__name__
                    log.error("model load failed", extra={"model": self.model_id, "error": self.error})
                    self._enter(ModelState.ERROR, error=self.error)
                else:
                    self._enter(ModelState.UNLOADED)
                raise
            self.loaded_at = int(time.time())
            self.loads += 1
            self._enter(ModelState.READY)
            log.info(
                "model loaded",
                extra={"model": self.model_id, "seconds": round(time.perf_counter() - started, 2)},
            )

    async def wait_loaded(self, timeout: float) -> None:
        """Load the model if needed and wait for it; 503 if that fails or takes too long."""
        deadline = time.monotonic() + timeout
        # A loop, since an unload may slip in between a load and our turn to run.
        while self.state is not ModelState.READY:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.model_loading(self.model_id, timeout)
            try:
                await asyncio.wait_for(asyncio.shield(self.load()), remaining)
            except asyncio.TimeoutError:
                raise errors.model_loading(self.model_id, timeout) from None
            except Exception as exc:
                raise errors.model_load_failed(self.model_id) from exc

    @contextlib.asynccontextmanager
    async def use(self, timeout: float) -> AsyncIterator[None]:
        """Keep the model loaded while a request runs on it, loading it first if needed."""
        await self.wait_loaded(timeout)
        # No await between the check above and this count: an unload cannot slip in.
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def unload(self) -> None:
        """Free the model once the requests in flight on it are done."""
        async with self._turn:
            if self.state in (ModelState.UNLOADED, ModelState.ERROR):
                if self.state is ModelState.ERROR:
                    self.error = None
                    self._enter(ModelState.UNLOADED)
                return
            self._enter(ModelState.UNLOADING)
            await self._idle.wait()
            try:
                await self._unload_model()
            finally:
                self.loaded_at = None
                self._enter(ModelState.UNLOADED)

    async def close(self) -> None:
        """At shutdown: stop a load under way and free the model without waiting for requests."""
        if self._loading and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(BaseException):
                await self._loading
        if self.state is not ModelState.UNLOADED:
            await self._unload_model()
            self.state = ModelState.UNLOADED
