"""The local backend: OpenAI requests in, engine calls out, OpenAI objects back.

``LocalModel`` is one model's engine (workers and queue); ``LlamaBackend`` routes public ids
(models, aliases, personas) to them and loads/unloads them through their ``Lifecycle``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from ... import errors
from ...errors import bad_request, model_not_found
from ...settings import ModelConfig, Settings
from ..base import Answer, Json, ModelCard, Relayed, Serving
from ..events import ModelEvents
from ..lifecycle import Lifecycle
from ..presets import Preset, presets
from .params import chat_params, completion_params, embedding_inputs
from .shapers import ChatShaper, CompletionShaper, embedding_response
from .fanout import fan_out
from .client import WorkerProcess
from .cores import available_cores
from .sources import resolve_gguf

log = logging.getLogger(__name__)


class LocalModel:
    """One configured model: its engine workers and the bounded queue in front of them.

    Each worker process decodes up to ``parallel`` sequences together; a request takes ``n``
    of them (one per choice) on one worker, or waits in a FIFO queue of ``queue_size``.
    """

    def __init__(self, config: ModelConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.created = int(time.time())
        self.workers: list[WorkerProcess] = []
        self._in_use: dict[WorkerProcess, int] = {}
        self._waiters: collections.deque[tuple[int, asyncio.Future]] = collections.deque()
        self.fingerprint = ""
        # Read by the metrics (http/metrics.py); the engine knows nothing of Prometheus.
        self.rejected = 0  # requests refused with 429 because the queue was full or too slow
        self._retired_restarts = 0  # engine restarts of workers since stopped
        self.on_event: Callable[[Json], None] | None = None  # called with every engine event

    async def start(self) -> None:
        # Off the event loop: a package source may assemble a GGUF of hundreds of MB.
        path = await asyncio.to_thread(resolve_gguf, self.config, self.settings.model_cache_dir)
        engine_config = self.engine_config(path)
        self.fingerprint = "fp_" + hashlib.sha256(repr(sorted(engine_config.items())).encode()).hexdigest()[:10]
        for index in range(self.config.slots):
            worker = WorkerProcess(f"{self.config.id}#{index}", engine_config, self.settings.worker_start_timeout)
            await worker.start()
            self.workers.append(worker)
            self._in_use[worker] = 0

    def engine_config(self, path: Path) -> Json:
        """What each engine worker of this model is started with."""
        slots = self.config.slots
        return {
            "path": str(path),
            "n_ctx": self.config.n_ctx,
            "n_threads": self.config.n_threads or default_threads(slots),
            "n_threads_batch": self.config.n_threads_batch or default_batch_threads(slots),
            "n_batch": self.config.n_batch,
            "parallel": self.config.parallel,
            "chat_format": self.config.chat_format,
            "chat_template": self.config.chat_template,
        }

    async def stop(self) -> None:
        # Forget the workers first: the model can be started again after an unload.
        workers, self.workers = self.workers, []
        self._retired_restarts += sum(worker.restarts_total for worker in workers)
        await asyncio.gather(*(worker.stop() for worker in workers))

    @property
    def n_ctx(self) -> int:
        return self.config.n_ctx

    def ready(self) -> bool:
        return bool(self.workers) and all(worker.ready.is_set() for worker in self.workers)

    def waiting(self) -> int:
        """Requests in line for a sequence."""
        return sum(1 for _, future in self._waiters if not future.done())

    def sequences_in_use(self) -> int:
        return sum(self._in_use.get(worker, 0) for worker in self.workers)

    def restarts(self) -> int:
        """Engine workers restarted after a crash, since the service started."""
        return self._retired_restarts + sum(worker.restarts_total for worker in self.workers)

    def _free_worker(self, need: int) -> WorkerProcess | None:
        # The least busy live worker with room for ``need`` sequences.
        candidates = [w for w in self.workers if self._in_use[w] + need <= self.config.parallel]
        return min(candidates, key=lambda w: (not w.ready.is_set(), self._in_use[w]), default=None)

    def _wake(self) -> None:
        while self._waiters:
            need, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            worker = self._free_worker(need)
            if worker is None:
                return
            self._waiters.popleft()
            self._in_use[worker] += need
            future.set_result(worker)

    @contextlib.asynccontextmanager
    async def worker(self, need: int = 1) -> AsyncIterator[WorkerProcess]:
        """Take ``need`` sequences on one worker, waiting in line; 429 beyond the queue."""
        if need > self.config.parallel:
            raise bad_request(f"'n' can be at most {self.config.parallel} for this model.", "n", "invalid_value")
        # Requests that gave up waiting (timeout, client gone) must not keep others in line:
        # otherwise a new request would queue behind them with every sequence free.
        self._waiters = collections.deque(entry for entry in self._waiters if not entry[1].done())
        # Embeddings (need 0) take no sequence: they run between two decoding steps.
        worker = None if (self._waiters and need) else self._free_worker(need)
        if worker is not None:
            self._in_use[worker] += need
        else:
            if len(self._waiters) >= self.settings.queue_size:
                self.rejected += 1
                raise errors.queue_full(self.config.id, retry_after=1)
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            self._waiters.append((need, future))
            try:
                worker = await asyncio.wait_for(asyncio.shield(future), self.settings.queue_timeout)
            except asyncio.TimeoutError:
                if not future.done():
                    future.cancel()
                    self._wake()
                    self.rejected += 1
                    raise errors.queue_full(self.config.id, retry_after=5) from None
                worker = future.result()
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
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

    async def run(self, op: str, params: Json, need: int = 1) -> list[Json]:
        """All events of one engine operation (for answers that are not streamed)."""
        async with self.worker(need) as worker:
            events = [event async for event in worker.call(op, params)]
        for event in events:
            self._observe(event)
        return events

    async def stream(self, op: str, params: Json, need: int = 1) -> AsyncIterator[Json]:
        async with self.worker(need) as worker:
            calls = worker.call(op, params)
            try:
                async for event in calls:
                    self._observe(event)
                    yield event
            finally:
                await calls.aclose()

    def _observe(self, event: Json) -> None:
        if self.on_event is not None:
            self.on_event(event)


def default_threads(slots: int = 1) -> int:
    """Leave one core for the API process, the rest shared by the model's engine workers:
    llama.cpp's spinning threads collapse when they oversubscribe the cores."""
    return max(1, (available_cores() - 1) // slots)


def default_batch_threads(slots: int = 1) -> int:
    """Every core for a batch (several sequences, or a prompt): it is compute-bound and
    short, so the API process rarely waits; one sequence alone decodes on n_threads.
    Measured on 2 cores at concurrency 8: 133 tok/s with 2 batch threads, 84 with 1.

    Shared by the ``slots`` workers, which batch at the same time: llama.cpp's OpenMP
    threads spin at each barrier waiting for a sibling the kernel has descheduled. Measured
    on 2 cores, ``slots: 2``, 6 streams of 48 tokens: 6 to 28 s with 2 batch threads per
    worker, 1.4 to 2.0 s with one."""
    return max(1, available_cores() // slots)


class _Primed:
    """A stream whose first chunk is already in hand; closing it closes the engine stream
    even if nobody iterated it yet (the client left before the first byte)."""

    def __init__(self, first: Json | None, chunks: AsyncIterator[Json]) -> None:
        self._first, self._chunks = first, chunks

    def __aiter__(self) -> "_Primed":
        return self

    async def __anext__(self) -> Json:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await self._chunks.aclose()


async def _primed(chunks: AsyncIterator[Json]) -> AsyncIterator[Json]:
    """Start a stream far enough that errors before the first token (queue full, context
    too long) still become a proper HTTP error instead of a broken stream."""
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        await chunks.aclose()
        raise
    return _Primed(first, chunks)


class _Held:
    """A stream that lets go of its model when it ends or is closed, started or not (an
    async generator's ``finally`` would not run if it were closed before its first step)."""

    def __init__(self, chunks: AsyncIterator[Json], hold: contextlib.AsyncExitStack) -> None:
        self._chunks = chunks
        self._hold = hold
        self._closed = False

    def __aiter__(self) -> "_Held":
        return self

    async def __anext__(self) -> Json:
        try:
            return await self._chunks.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._chunks.aclose()
        finally:
            await self._hold.aclose()


class LlamaBackend:
    """Every model of the config file with a GGUF source."""

    manages_models = True
    name = "local"

    def __init__(self, settings: Settings, events: ModelEvents | None = None) -> None:
        self.settings = settings
        events = events or ModelEvents()
        configs = [config for config in settings.models if config.backend == "llama"]
        self.local_models = {config.id: LocalModel(config, settings) for config in configs}
        self.lifecycles = {
            model_id: Lifecycle(model_id, model.start, model.stop, events)
            for model_id, model in self.local_models.items()
        }
        self._presets = presets(configs)
        created = int(time.time())
        self._cards = [
            ModelCard(model_id, preset.model.owned_by, created) for model_id, preset in self._presets.items()
        ]

    def _eager(self, config: ModelConfig) -> bool:
        return (config.load or self.settings.model_load) == "eager"

    async def start(self) -> None:
        """Start loading the eager models; requests and ``/ready`` wait for them, the API
        (``/health``, ``/v1/models``, admin) answers at once."""
        for model_id, model in self.local_models.items():
            if self._eager(model.config):
                self.lifecycles[model_id].load()

    async def stop(self) -> None:
        await asyncio.gather(*(lifecycle.close() for lifecycle in self.lifecycles.values()))

    def models(self) -> list[ModelCard]:
        return self._cards

    def claims(self, model_id: str) -> bool:
        return model_id in self._presets

    def configured_ids(self) -> list[str]:
        return list(self._presets)

    async def refresh_models(self) -> None:
        """The configured models are the list: nothing to fetch."""

    async def retrieve_model(self, model_id: str) -> Json:
        self._preset(model_id)
        return next(card for card in self._cards if card.id == model_id).to_openai()

    def serving(self, operation_id: str | None) -> Serving:
        """Every operation for a local model is answered here."""
        return Serving.HERE

    async def forward(self, method: str, path: str, query: bytes, headers: Any, content: bytes | None) -> Relayed:
        raise AssertionError("local models are never forwarded")  # always Serving.HERE

    def context_length(self, model_id: str) -> int:
        return self.local_models[self._preset(model_id).model.id].n_ctx

    async def probe(self) -> bool:
        return self.readiness()[0]

    def readiness(self) -> tuple[bool, str]:
        # Lazy models load on demand: only the eager ones must be up for the service to be ready.
        waiting = [
            f"{model_id} ({self.lifecycles[model_id].state.value})"
            for model_id, model in self.local_models.items()
            if self._eager(model.config) and not (self.lifecycles[model_id].ready and model.ready())
        ]
        return not waiting, (f"models not ready: {', '.join(waiting)}" if waiting else "")

    def loaded_models(self) -> list[str]:
        return [model_id for model_id, lifecycle in self.lifecycles.items() if lifecycle.ready]

    def status(self, model_id: str) -> Json:
        model = self.local_models[model_id]
        lifecycle = self.lifecycles[model_id]
        config = model.config
        return {
            "id": model_id,
            "object": "model",
            "owned_by": config.owned_by,
            "state": lifecycle.state.value,
            "load": "eager" if self._eager(config) else "lazy",
            "aliases": config.aliases,
            "personas": [config.persona_id(persona) for persona in config.personas],
            "loaded_at": lifecycle.loaded_at,
            "loads": lifecycle.loads,
            "error": lifecycle.error,
            "n_ctx": config.n_ctx,
            "slots": config.slots,
        }

    def statuses(self) -> list[Json]:
        return [self.status(model_id) for model_id in self.local_models]

    def _preset(self, model_id: str) -> Preset:
        try:
            return self._presets[model_id]
        except KeyError:
            raise model_not_found(model_id) from None

    async def load(self, model_id: str) -> Json:
        config = self._preset(model_id).model
        await self.lifecycles[config.id].wait_loaded(self.settings.model_load_timeout)
        return self.status(config.id)

    async def unload(self, model_id: str) -> Json:
        config = self._preset(model_id).model
        await self.lifecycles[config.id].unload()
        return self.status(config.id)

    async def _serve(self, model: LocalModel, answer) -> Answer:
        """Run ``answer()`` with the model loaded (loading it if needed), and keep it loaded
        until the answer, or the stream of chunks, is done."""
        hold = contextlib.AsyncExitStack()
        await hold.enter_async_context(self.lifecycles[model.config.id].use(self.settings.model_load_timeout))
        try:
            result = await answer()
        except BaseException:
            await hold.aclose()
            raise
        if isinstance(result, dict):
            await hold.aclose()
            return result
        return _Held(result, hold)

    async def chat_completion(self, model_id: str, request: Json) -> Answer:
        preset = self._preset(model_id)
        model = self.local_models[preset.model.id]
        params = chat_params(preset.chat_request(request), model.n_ctx)
        return await self._serve(model, lambda: self._generate(model, model_id, "chat", params, ChatShaper))

    async def chat_completion_objects(self, model_id: str, request: Json) -> Json | AsyncIterator[Json]:
        # The engine's answers are objects already.
        return await self.chat_completion(model_id, request)

    async def completion(self, model_id: str, request: Json) -> Answer:
        preset = self._preset(model_id)
        model = self.local_models[preset.model.id]
        params = completion_params(preset.completion_request(request, model_id), model.n_ctx)
        prompts = params.pop("prompts")

        def one(prompt_params: Json) -> Awaitable[Answer]:
            return self._generate(model, model_id, "completion", prompt_params, CompletionShaper)

        if len(prompts) == 1:
            return await self._serve(model, lambda: one({**params, "prompt": prompts[0]}))
        capacity = model.config.parallel * model.config.slots
        if len(prompts) * params.get("n", 1) > capacity:
            # All prompts of a request run at once (a stream's must all be running before
            # its first byte), so they must fit in the model's sequences together.
            raise bad_request(
                f"A request can have at most {capacity} prompts x n for this model.", "prompt", "invalid_value"
            )
        return await self._serve(model, lambda: fan_out(params, prompts, one))

    @staticmethod
    async def _generate(
        model: LocalModel, model_id: str, op: str, params: Json, shaper: type[ChatShaper]
    ) -> Answer:
        shape = shaper(model_id, model.fingerprint, params)
        need = params.get("n", 1)
        if not params["stream"]:
            return shape.completion(await model.run(op, params, need))
        return await _primed(shape.chunks(model.stream(op, params, need)))

    async def prompt_tokens(self, model_id: str, request: Json) -> int:
        """How many tokens the prompt of a chat ``request`` is, counted as it would be
        generated from: the model's chat template (persona and tool instructions included)
        and tokenizer, in the engine worker, between two decoding steps."""
        preset = self._preset(model_id)
        model = self.local_models[preset.model.id]
        params = chat_params(preset.chat_request(request), model.n_ctx)

        async def answer() -> Json:
            events = await model.run("count", {"messages": params["messages"]}, need=0)
            return next(event["data"] for event in events if event["event"] == "result")

        return (await self._serve(model, answer))["prompt_tokens"]

    async def embedding(self, model_id: str, request: Json) -> Json:
        preset = self._preset(model_id)
        model = self.local_models[preset.model.id]
        request = preset.embedding_request(request, model_id)
        inputs = embedding_inputs(request)

        async def answer() -> Json:
            events = await model.run("embedding", {"input": inputs, "dimensions": request.get("dimensions")}, need=0)
            result = next(event["data"] for event in events if event["event"] == "result")
            return embedding_response(model_id, result, request.get("encoding_format", "float"))

        return await self._serve(model, answer)
