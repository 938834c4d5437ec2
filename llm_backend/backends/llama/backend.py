"""The local backend: OpenAI requests in, engine calls out, OpenAI objects back."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from ...errors import OpenAIError, bad_request
from ...settings import ModelConfig, Settings
from ..base import Answer, Json, ModelCard
from . import translate
from .client import WorkerProcess
from .sources import resolve_gguf

log = logging.getLogger(__name__)


def queue_full(model_id: str, retry_after: int) -> OpenAIError:
    return OpenAIError(
        429,
        f"Too many requests are waiting for model '{model_id}'. Please retry shortly.",
        code="rate_limit_exceeded",
        type="rate_limit_error",
        headers={"retry-after": str(retry_after)},
    )


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

    async def start(self) -> None:
        path = resolve_gguf(self.config)
        engine_config = {
            "path": str(path),
            "n_ctx": self.config.n_ctx,
            "n_threads": self.config.n_threads or default_threads(),
            "n_threads_batch": self.config.n_threads_batch or self.config.n_threads or default_threads(),
            "n_batch": self.config.n_batch,
            "parallel": self.config.parallel,
            "chat_format": self.config.chat_format,
        }
        self.fingerprint = "fp_" + hashlib.sha256(repr(sorted(engine_config.items())).encode()).hexdigest()[:10]
        for index in range(self.config.slots):
            worker = WorkerProcess(f"{self.config.id}#{index}", engine_config, self.settings.worker_start_timeout)
            await worker.start()
            self.workers.append(worker)
            self._in_use[worker] = 0

    async def stop(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self.workers))

    @property
    def n_ctx(self) -> int:
        return self.config.n_ctx

    def ready(self) -> bool:
        return bool(self.workers) and all(worker.ready.is_set() for worker in self.workers)

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
        # Embeddings (need 0) take no sequence: they run between two decoding steps.
        worker = None if (self._waiters and need) else self._free_worker(need)
        if worker is not None:
            self._in_use[worker] += need
        else:
            if len(self._waiters) >= self.settings.queue_size:
                raise queue_full(self.config.id, retry_after=1)
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            self._waiters.append((need, future))
            try:
                worker = await asyncio.wait_for(asyncio.shield(future), self.settings.queue_timeout)
            except asyncio.TimeoutError:
                if not future.done():
                    future.cancel()
                    raise queue_full(self.config.id, retry_after=5) from None
                worker = future.result()
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._in_use[future.result()] -= need
                    self._wake()
                else:
                    future.cancel()
                raise
        try:
            yield worker
        finally:
            self._in_use[worker] -= need
            self._wake()

    async def run(self, op: str, params: Json, need: int = 1) -> list[Json]:
        """All events of one engine operation (for answers that are not streamed)."""
        async with self.worker(need) as worker:
            return [event async for event in worker.call(op, params)]

    async def stream(self, op: str, params: Json, need: int = 1) -> AsyncIterator[Json]:
        async with self.worker(need) as worker:
            calls = worker.call(op, params)
            try:
                async for event in calls:
                    yield event
            finally:
                await calls.aclose()


def default_threads() -> int:
    """Leave one core for the API process: llama.cpp's spinning threads collapse when they
    oversubscribe the cores."""
    return max(1, (os.cpu_count() or 2) - 1)


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


class LlamaBackend:
    """Every model of the config file with a GGUF source."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.local_models = {config.id: LocalModel(config, settings) for config in settings.models}
        self._by_id = {
            model_id: self.local_models[config.id] for config in settings.models for model_id in config.ids
        }

    async def start(self) -> None:
        for model in self.local_models.values():
            await model.start()

    async def stop(self) -> None:
        await asyncio.gather(*(model.stop() for model in self.local_models.values()))

    def models(self) -> list[ModelCard]:
        return [ModelCard(model_id, model.config.owned_by, model.created) for model_id, model in self._by_id.items()]

    def readiness(self) -> tuple[bool, str]:
        waiting = [model_id for model_id, model in self.local_models.items() if not model.ready()]
        return not waiting, (f"models not ready: {', '.join(waiting)}" if waiting else "")

    def _model(self, model_id: str) -> LocalModel:
        return self._by_id[model_id]

    async def chat_completion(self, model_id: str, request: Json) -> Answer:
        return await self._generate(model_id, "chat", translate.chat_params(request), translate.ChatShaper)

    async def completion(self, model_id: str, request: Json) -> Answer:
        return await self._generate(model_id, "completion", translate.completion_params(request), translate.CompletionShaper)

    async def _generate(self, model_id: str, op: str, params: Json, shaper: type[translate.ChatShaper]) -> Answer:
        model = self._model(model_id)
        shape = shaper(model_id, model.fingerprint, params)
        need = params.get("n", 1)
        if not params["stream"]:
            return shape.completion(await model.run(op, params, need))
        return await _primed(shape.chunks(model.stream(op, params, need)))

    async def embedding(self, model_id: str, request: Json) -> Json:
        model = self._model(model_id)
        inputs = translate.embedding_inputs(request)
        events = await model.run("embedding", {"input": inputs}, need=0)
        result = next(event["data"] for event in events if event["event"] == "result")
        return translate.embedding_response(model_id, result, request.get("encoding_format", "float"))
