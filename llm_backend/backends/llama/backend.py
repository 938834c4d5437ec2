"""The local backend: OpenAI requests in, engine calls out, OpenAI objects back."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ...errors import OpenAIError
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
    """One configured model: its engine workers and the bounded queue in front of them."""

    def __init__(self, config: ModelConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.created = int(time.time())
        self.workers: list[WorkerProcess] = []
        self._idle: asyncio.Queue[WorkerProcess] = asyncio.Queue()
        self._waiting = 0
        self.fingerprint = ""

    async def start(self) -> None:
        path = resolve_gguf(self.config)
        engine_config = {
            "path": str(path),
            "n_ctx": self.config.n_ctx,
            "n_threads": self.config.n_threads,
            "n_batch": self.config.n_batch,
            "chat_format": self.config.chat_format,
        }
        self.fingerprint = "fp_" + hashlib.sha256(repr(sorted(engine_config.items())).encode()).hexdigest()[:10]
        for index in range(self.config.slots):
            worker = WorkerProcess(f"{self.config.id}#{index}", engine_config, self.settings.worker_start_timeout)
            await worker.start()
            self.workers.append(worker)
            self._idle.put_nowait(worker)

    async def stop(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self.workers))

    @property
    def n_ctx(self) -> int:
        return self.config.n_ctx

    @property
    def n_vocab(self) -> int:
        return self.workers[0].n_vocab

    def ready(self) -> bool:
        return bool(self.workers) and all(worker.ready.is_set() for worker in self.workers)

    @contextlib.asynccontextmanager
    async def worker(self) -> AsyncIterator[WorkerProcess]:
        """Wait for a free engine worker; refuse with 429 beyond the queue limit."""
        if self._idle.empty() and self._waiting >= self.settings.queue_size:
            raise queue_full(self.config.id, retry_after=1)
        self._waiting += 1
        try:
            worker = await asyncio.wait_for(self._idle.get(), self.settings.queue_timeout)
        except asyncio.TimeoutError:
            raise queue_full(self.config.id, retry_after=5) from None
        finally:
            self._waiting -= 1
        try:
            yield worker
        finally:
            self._idle.put_nowait(worker)

    async def run(self, op: str, params: Json) -> Json:
        async with self.worker() as worker:
            async for data in worker.call(op, params):
                return data
        raise OpenAIError(500, "The engine returned no answer.")

    async def stream(self, op: str, params: Json) -> AsyncIterator[Json]:
        async with self.worker() as worker:
            calls = worker.call(op, params)
            try:
                async for data in calls:
                    yield data
            finally:
                await calls.aclose()


async def _primed(chunks: AsyncIterator[Json]) -> AsyncIterator[Json]:
    """Start a stream far enough that errors before the first token (queue full, context
    too long) still become a proper HTTP error instead of a broken stream."""
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = None

    async def rest() -> AsyncIterator[Json]:
        try:
            if first is not None:
                yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    return rest()


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
        model = self._model(model_id)
        params = translate.chat_params(request, model.n_vocab)
        shape = translate.ChatShaper(model_id, model.fingerprint)
        if not params["stream"]:
            return shape.completion(await model.run("chat", params))
        return await _primed(shape.chunks(model.stream("chat", params)))

    async def completion(self, model_id: str, request: Json) -> Answer:
        model = self._model(model_id)
        params = translate.completion_params(request, model.n_vocab)
        shape = translate.CompletionShaper(model_id, model.fingerprint)
        if not params["stream"]:
            return shape.completion(await model.run("completion", params))
        return await _primed(shape.chunks(model.stream("completion", params)))

    async def embedding(self, model_id: str, request: Json) -> Json:
        model = self._model(model_id)
        inputs = translate.embedding_inputs(request, model.n_vocab)
        result = await model.run("embedding", {"input": inputs})
        return translate.embedding_response(model_id, result, request.get("encoding_format", "float"))
