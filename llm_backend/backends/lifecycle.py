"""Loading and unloading one model at runtime.

The rules, for every backend whose models take memory:
- a request for a model that is not loaded starts the load and waits for it (bounded); any
  number of concurrent first requests share that one load;
- an unload waits for the requests in flight on the model, then frees it; a request that
  arrives meanwhile, or later, loads it again (an unload frees memory, it does not disable
  the model);
- a failed load leaves the model in ``error``; the next request or admin load tries again;
- ``keep_alive`` (Ollama's meaning): once its last request is done, the model is unloaded
  after that many seconds without another (0: at once; None: never). The last request to
  finish sets it (its own, or the model's); a request that comes meanwhile keeps the model,
  and one that comes after loads it again.
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


# ``Lifecycle.use``'s keep_alive when the request names none: the model's own.
MODEL_KEEP_ALIVE = object()


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
        keep_alive: float | None = None,
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
        self.keep_alive = keep_alive  # the model's own: seconds, or None for never
        self._expiry: asyncio.TimerHandle | None = None  # the idle unload a keep_alive scheduled
        self._expiring: asyncio.Task | None = None
        self.expires_at: int | None = None  # Unix time of that unload
        self.expired = False  # unloaded by its keep_alive (it loads again on demand)

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
            self.expired = False
            self._enter(ModelState.READY)
            if not self._in_flight:  # loaded ahead of any request (eager, admin): its keep_alive runs
                self._expire_after(self.keep_alive)
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
    async def use(self, timeout: float, keep_alive: Any = MODEL_KEEP_ALIVE) -> AsyncIterator[None]:
        """Keep the model loaded while a request runs on it, loading it first if needed;
        afterwards, ``keep_alive`` seconds more if no other request comes (None: for good;
        by default the model's own)."""
        await self.wait_loaded(timeout)
        # No await between the check above and this count: an unload cannot slip in.
        self._in_flight += 1
        self._idle.clear()
        self._cancel_expiry()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
                self._expire_after(self.keep_alive if keep_alive is MODEL_KEEP_ALIVE else keep_alive)

    def _expire_after(self, seconds: float | None) -> None:
        if seconds is None or self.state is not ModelState.READY:
            return
        self.expires_at = int(time.time() + seconds)
        self._expiry = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = self.expires_at = None

    def _expire(self) -> None:
        self._expiry = self.expires_at = None
        self._expiring = asyncio.create_task(self._unload_idle(), name=f"keep_alive {self.model_id}")

    async def _unload_idle(self) -> None:
        if await self.unload(only_if_idle=True):
            self.expired = True
            log.info("model unloaded: idle past its keep_alive", extra={"model": self.model_id})

    async def unload(self, only_if_idle: bool = False) -> bool:
        """Free the model once the requests in flight on it are done (``only_if_idle``: only
        if none is, else leave it). Whether it unloaded it."""
        async with self._turn:
            if only_if_idle and (self._in_flight or self.state is not ModelState.READY):
                return False
            self._cancel_expiry()
            if self.state in (ModelState.UNLOADED, ModelState.ERROR):
                if self.state is ModelState.ERROR:
                    self.error = None
                    self._enter(ModelState.UNLOADED)
                return False
            self._enter(ModelState.UNLOADING)
            await self._idle.wait()
            try:
                await self._unload_model()
            finally:
                self.loaded_at = None
                self._enter(ModelState.UNLOADED)
            return True

    async def close(self) -> None:
        """At shutdown: stop a load (or an idle unload) under way and free the model without
        waiting for requests."""
        self._cancel_expiry()
        for task in (self._loading, self._expiring):
            if task and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self.state is not ModelState.UNLOADED:
            await self._unload_model()
            self.state = ModelState.UNLOADED
