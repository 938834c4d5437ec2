"""One local model's engine: its worker processes and the bounded queue in front of them.

A request takes ``n`` sequences (one per choice) on one worker, or waits in line (at most
``queue_size``; 429 beyond, or after ``queue_timeout``). A chat's worker is the one with room
its route key hashes to on a ring of the workers (``ring.py``, within its bound on loads):
its KV holds the conversation's prefix from the turns before.

The line serves tenants in turn (``fair_line.py``, issue #39): a freed sequence goes to the
next waiting tenant's oldest request, so one tenant's burst delays another's request by at
most one of its requests, and cannot fill the line against the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ... import errors
from ...errors import bad_request
from ...json.types import Json
from ...settings.ceiling import max_tokens_ceiling
from ...settings.model import ModelConfig
from ...settings import Settings
from ..base import Stream, background, engine_phase, tenant
from ..fair_line import Line
from ..ring import Ring
from .background import BackgroundEngine
from .worker_process import WorkerProcess
from .cores import service_cores
from .sources import files_of

log = logging.getLogger(__name__)
# The window assumed by the API process's checks before a model whose window is read from its
# GGUF has loaded once: the engine, which knows it, checks again.
UNKNOWN_WINDOW = 1 << 20


class LocalModel:
    """One configured model: its engine workers and the bounded queue in front of them.

    Each worker process decodes up to ``parallel`` sequences together; a request takes ``n``
    of them (one per choice) on one worker, or waits in line (``Line``: tenants in turn).
    """

    def __init__(self, config: ModelConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.created = int(time.time())
        self.workers: list[WorkerProcess] = []
        self._in_use: dict[WorkerProcess, int] = {}
        self._line: Line[tuple[int, bytes]] = Line()
        self._ring = Ring([])  # the workers', by index (``_free_worker``)
        self.fingerprint = ""
        self._window: int | None = None
        self._ceiling: int | None = None
        self._said_gpu_ignored = False
        # Read by the metrics (http/metrics.py); the engine knows nothing of Prometheus.
        self.rejected = 0  # requests refused with 429 because the queue was full or too slow
        self._retired_restarts = 0  # engine restarts of workers since stopped
        self.on_event: Callable[[Json], None] | None = None  # called with every engine event
        # Batch lines (``base.background``) decode on an engine of their own at low priority.
        self.background = BackgroundEngine(
            f"{config.id}#batch", settings.batch_nice, settings.worker_start_timeout, settings.worker_memory_mb << 20
        )

    async def start(self) -> None:
        # Off the event loop (a package source may assemble a GGUF of hundreds of MB, a hub
        # source download it), and off the default pool the host names are resolved on.
        path, mmproj = await files_of(self.config, self.settings.model_cache_dir)
        engine_config = self.engine_config(path, mmproj)
        self.fingerprint = "fp_" + hashlib.sha256(repr(sorted(engine_config.items())).encode()).hexdigest()[:10]
        self.background.configure(engine_config)
        for index in range(self.config.slots):
            worker = WorkerProcess(
                f"{self.config.id}#{index}", engine_config, self.settings.worker_start_timeout, memory_limit=self.settings.worker_memory_mb << 20
            )
            await worker.start()
            self.workers.append(worker)
            self._in_use[worker] = 0
        self._report_ignored_gpu_settings()

    def engine_config(self, path: Path, mmproj: Path | None = None) -> Json:
        """What each engine worker of this model is started with (``mmproj``: its projector
        GGUF's absolute path, for a model that takes images)."""
        slots = self.config.slots
        return {
            "path": str(path),
            "mmproj": str(mmproj) if mmproj is not None else None,
            "image_max_tokens": self.config.image_max_tokens,  # None: the projector's own framing (engine/media.py)
            "image_cache_mb": self.config.image_cache_mb,
            "n_ctx": self.config.n_ctx,  # None: 2048, or shared the trained window (engine/llama_params.py)
            "kv_size": self.config.kv_size,
            "kv_shared": self.config.kv_shared,
            "max_answer": self.config.max_answer,  # None: the trained window (engine/submission.py)
            "n_threads": self.config.n_threads or default_threads(slots, self.settings.cpu_cores),
            "n_threads_batch": self.config.n_threads_batch or default_batch_threads(slots, self.settings.cpu_cores),
            "n_batch": self.config.n_batch,
            "n_ubatch": self.config.n_ubatch,  # None: by the device (engine/llama_params.py)
            "parallel": self.config.parallel,
            "chat_format": self.config.chat_format,
            "chat_template": self.config.chat_template,
            "tool_format": self.config.tool_format,
            "type_k": self.config.type_k,
            "type_v": self.config.type_v,
            "prefix_sharing": self.config.prefix_sharing,
            "exact_reuse": self.config.exact_reuse,
            "prefix_cache_mb": self.config.prefix_cache_mb,
            "prefix_disk_mb": self.config.prefix_disk_mb,
            "prefix_disk_dir": str(self.settings.data_dir / "prefixes"),
            "prompt_lookup": self.config.prompt_lookup,
            "prediction_exact": self.config.prediction_exact,
            **self.config.gpu(),
        }

    @property
    def tool_format(self) -> str | None:
        """The tool-call format the engine found in the model's chat template (tool_formats/)."""
        return self.workers[0].hello.get("tool_format") if self.workers else None

    @property
    def reasoning_format(self) -> str | None:
        """The reasoning family the engine found in the model's chat template (reasoning/)."""
        return self.workers[0].hello.get("reasoning_format") if self.workers else None

    def memory(self) -> Json:
        """What the model's KV cache takes (its types as configured; the bytes once loaded, as
        its engine computed them), and the memory ceiling of each of its workers: the
        ``worker_memory_mb`` allowance plus what the model takes (worker_process.py's watchdog)."""
        hello = self.workers[0].hello if self.workers else {}
        return {
            "type_k": self.config.type_k,
            "type_v": self.config.type_v,
            "kv_bytes_per_sequence": hello.get("kv_bytes_per_sequence"),
            "kv_bytes": hello.get("kv_bytes"),
            "model_bytes": hello.get("model_bytes"),
            "worker_limit_bytes": self.workers[0].memory_ceiling if self.workers else None,
        }

    @property
    def gpu_offload(self) -> bool | None:
        """Whether this model's llama.cpp build offloads to a GPU (None until it has started)."""
        return self.workers[0].hello.get("gpu_offload") if self.workers else None

    def _report_ignored_gpu_settings(self) -> None:
        """A CPU build given GPU settings starts anyway and says so, once per model."""
        ignored = self.config.gpu_settings_given()
        if ignored and self.gpu_offload is False and not self._said_gpu_ignored:
            self._said_gpu_ignored = True
            log.warning(
                "this llama.cpp build has no GPU offload: GPU settings ignored, the model runs on the CPU "
                "(build another backend: make run LLAMA_BACKEND=cuda|metal|vulkan, docs/MODELS.md)",
                extra={"model": self.config.id, "ignored": ignored},
            )

    async def stop(self) -> None:
        # Forget the workers first: the model can be started again after an unload.
        workers, self.workers = self.workers, []
        self._retired_restarts += sum(worker.restarts_total for worker in workers)
        await asyncio.gather(*(worker.stop() for worker in workers), self.background.stop())

    @property
    def window(self) -> int | None:
        """The longest sequence: as configured, else as the engine found it in the GGUF
        (known once a worker has started, and remembered after an unload)."""
        if self.workers and self.workers[0].n_ctx:
            self._window = self.workers[0].n_ctx
        return self._window or self.config.n_ctx

    @property
    def max_tokens_ceiling(self) -> int:
        """The largest max_tokens fitted rather than refused (settings/model.py): as the engine
        found it (remembered after an unload); before the first load, by the settings with
        the trained window, which only the GGUF says, counted as ``UNKNOWN_WINDOW``: a bound
        no GGUF reaches, and the engine checks again (engine/submission.py)."""
        if self.workers and self.workers[0].hello.get("max_tokens_ceiling"):
            self._ceiling = int(self.workers[0].hello["max_tokens_ceiling"])
        return self._ceiling or max_tokens_ceiling(UNKNOWN_WINDOW, self.config.n_ctx, self.config.max_answer)

    @property
    def kv_size(self) -> int | None:
        """The KV cells the sequences of a worker share (None until loaded)."""
        return self.workers[0].hello.get("kv_size") if self.workers else None

    @property
    def n_ctx(self) -> int:
        """The window for the checks made before the engine sees a request; before the first
        load of a model whose window comes from its GGUF, a bound no GGUF reaches, and the
        engine checks (engine/admission.py)."""
        return self.window or UNKNOWN_WINDOW

    def ready(self) -> bool:
        return bool(self.workers) and all(worker.ready.is_set() for worker in self.workers)

    def waiting(self) -> int:
        """Requests in line for a sequence."""
        return self._line.waiting()

    def sequences_in_use(self) -> int:
        return sum(self._in_use.get(worker, 0) for worker in self.workers)

    def restarts(self) -> int:
        """Engine workers restarted after a crash, since the service started."""
        return self._retired_restarts + sum(worker.restarts_total for worker in self.workers)

    def _free_worker(self, need: int, route: bytes) -> WorkerProcess | None:
        """A live worker with room for ``need`` sequences: the one ``route`` (the chat's
        route key) hashes to within the bound (``ring.py``), else the least busy."""
        candidates = [w for w in self.workers if self._in_use[w] + need <= self.config.parallel]
        least = min(candidates, key=lambda w: (not w.ready.is_set(), self._in_use[w]), default=None)
        usable = [w in candidates and w.ready.is_set() for w in self.workers]
        if least is None or not route or not any(usable):
            return least
        if len(self._ring) != len(self.workers):
            self._ring = Ring([f"worker-{index}" for index in range(len(self.workers))])
        picked = self._ring.pick(route, [self._in_use[w] for w in self.workers], usable)
        return least if picked is None else self.workers[picked]  # None only with no usable worker

    def _wake(self) -> None:
        while (waiter := self._line.next()) is not None:
            future, (need, route) = waiter
            worker = self._free_worker(need, route)
            if worker is None:
                return
            self._line.served()
            self._in_use[worker] += need
            future.set_result(worker)

    @contextlib.asynccontextmanager
    async def worker(self, need: int = 1, route: bytes = b"") -> AsyncIterator[WorkerProcess]:
        """Take ``need`` sequences on one worker, waiting in line; 429 beyond the queue.
        ``route``: the chat's route key (``prefix_routes.route_key``)."""
        if need > self.config.parallel:
            raise bad_request(f"'n' can be at most {self.config.parallel} for this model.", "n", "invalid_value")
        if background.get():  # a batch line: never in line with interactive requests
            async with self.background.take(need) as low:
                yield low
            return
        # Embeddings (need 0) take no sequence: they run between two decoding steps.
        worker: WorkerProcess | None = None if (self._line.waiting() and need) else self._free_worker(need, route)
        if worker is not None:
            self._in_use[worker] += need
        else:
            future: asyncio.Future[WorkerProcess] = asyncio.get_running_loop().create_future()
            refusal = functools.partial(errors.queue_full, self.config.id, retry_after=1)
            if not self._line.join(tenant.get(), future, (need, route), self.settings.queue_size, refusal):
                self.rejected += 1
                raise errors.queue_full(self.config.id, retry_after=1)
            try:
                worker = await asyncio.wait_for(asyncio.shield(future), self.settings.queue_timeout)
            except errors.OpenAIError:  # made room for another tenant's request
                self.rejected += 1
                raise
            except asyncio.TimeoutError:
                if not future.done():
                    future.cancel()
                    self._wake()
                    self.rejected += 1
                    raise errors.queue_full(self.config.id, retry_after=5) from None
                worker = future.result()
            except asyncio.CancelledError:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._in_use[future.result()] -= need
                    self._wake()
                else:
                    future.cancel()
                    self._wake()
                raise
        try:
            yield worker
        finally:
            self._in_use[worker] -= need
            self._wake()

    async def run(self, op: str, params: Json, need: int = 1, route: bytes = b"") -> list[Json]:
        """All events of one engine operation (for answers that are not streamed)."""
        phase = engine_phase.get()  # the request's span, when tracing is on (http/tracing.py)
        phase("queue")
        async with self.worker(need, route) as worker:
            phase("engine")
            try:
                events = [event async for event in worker.call(op, params)]
            finally:
                phase("end")
        for event in events:
            self._observe(event)
        return events

    async def stream(self, op: str, params: Json, need: int = 1, route: bytes = b"") -> Stream[Json]:
        phase = engine_phase.get()
        phase("queue")
        async with self.worker(need, route) as worker:
            phase("engine")
            calls = worker.call(op, params)
            try:
                async for event in calls:
                    self._observe(event)
                    yield event
            finally:
                phase("end")
                await calls.aclose()

    def _observe(self, event: Json) -> None:
        if self.on_event is not None:
            self.on_event(event)


def default_threads(slots: int = 1, cores: int | None = None) -> int:
    """Leave one core for the API process, the rest shared by the model's engine workers:
    llama.cpp's spinning threads collapse when they oversubscribe the cores. ``cores``: the
    ``cpu_cores`` setting (``service_cores``)."""
    return max(1, (service_cores(cores) - 1) // slots)


def default_batch_threads(slots: int = 1, cores: int | None = None) -> int:
    """Every core for a batch (several sequences, or a prompt): it is compute-bound and
    short, so the API process rarely waits; one sequence alone decodes on n_threads.
    Measured on 2 cores at concurrency 8: 133 tok/s with 2 batch threads, 84 with 1.

    Shared by the ``slots`` workers, which batch at the same time: llama.cpp's OpenMP
    threads spin at each barrier waiting for a sibling the kernel has descheduled. Measured
    on 2 cores, ``slots: 2``, 6 streams of 48 tokens: 6 to 28 s with 2 batch threads per
    worker, 1.4 to 2.0 s with one."""
    return max(1, service_cores(cores) // slots)
