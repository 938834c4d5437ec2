"""The local backend: OpenAI requests in, engine calls out, OpenAI objects back.

``LlamaBackend`` routes public ids (models, aliases, personas) to their ``LocalModel``
(local_model.py: workers and queue) and loads/unloads them through their ``Lifecycle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, overload

from ...budgets import prompt_count
from ...errors import bad_request, model_not_found
from ...json.types import Json
from ...settings.model import ModelConfig, keep_alive_seconds
from ...settings.shapes import shape_of
from ...off_loop import many_values, off_loop
from ...openai_tokens import first_use
from ...settings import Settings
from ..base import ModelCard, ModelKind, Objects, Serving, tenant
from ..capabilities import TEXT_MODEL
from ..events import ModelEvents
from ..lifecycle import MODEL_KEEP_ALIVE, Lifecycle
from ..prefix_routes import route_key
from ..presets import REPORTED_SAMPLING, Preset, presets
from .fanout import fan_out
from . import prediction, reasoning
from .images import ImageLimits, with_images, without_data
from .local_model import LocalModel
from .params import chat_params, completion_params, embedding_inputs
from .shapers import ChatShaper, CompletionShaper, embedding_response
from .streams import Held, primed

if TYPE_CHECKING:
    from .image_downloads import ImageDownloads


SYNTHETIC_OWNER = "llm-backend:synthetic"


def owned_by(config: ModelConfig) -> str:
    """The card's owner: as configured, else ``llm-backend:synthetic`` for random weights."""
    synthetic = shape_of(config.source) is not None and "owned_by" not in config.model_fields_set
    return SYNTHETIC_OWNER if synthetic else config.owned_by


def description(config: ModelConfig) -> str | None:
    """Said on a synthetic model's card: its answers mean nothing (settings/shapes.py)."""
    shape = shape_of(config.source)
    return None if shape is None else shape.description


class LlamaBackend:
    """Every model of the config file with a GGUF source: text models (``TEXT_MODEL``: chat,
    completions, embeddings, prompt counts, loaded and unloaded here)."""

    name = "local"

    def __init__(self, settings: Settings, events: ModelEvents | None = None) -> None:
        self.settings = settings
        events = events or ModelEvents()
        configs = [config for config in settings.models if config.backend == "llama"]
        self.local_models = {config.id: LocalModel(config, settings) for config in configs}
        self.lifecycles = {
            model_id: Lifecycle(model_id, model.start, model.stop, events, model.config.keep_alive)
            for model_id, model in self.local_models.items()
        }
        self._presets = presets(configs)
        self.image_limits = ImageLimits.of(settings)
        self._downloads: ImageDownloads | None = None  # built with the first download
        created = int(time.time())
        self._cards = [
            ModelCard(model_id, owned_by(preset.model), created, description=description(preset.model),
                      input_modalities=("text", "image") if preset.model.takes_images else ("text",))
            for model_id, preset in self._presets.items()
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
        # With the context window where it is known: a field clients read (issue #49).
        windows = {model_id: self.local_models[preset.model.id].window for model_id, preset in self._presets.items()}
        return [replace(card, context_length=windows[card.id]) for card in self._cards]

    def claims(self, model_id: str) -> bool:
        return model_id in self._presets

    def configured_ids(self) -> list[str]:
        return list(self._presets)

    def canonical_id(self, model_id: str) -> str:
        preset = self._presets.get(model_id)
        return model_id if preset is None else preset.model.id

    async def refresh_models(self) -> None:
        """The configured models are the list: nothing to fetch."""

    async def retrieve_model(self, model_id: str) -> Json:
        self._preset(model_id)
        return next(card for card in self.models() if card.id == model_id).to_openai()

    def model_kind(self, model_id: str) -> ModelKind:
        return TEXT_MODEL

    def serving(self, operation_id: str | None) -> Serving:
        """Every operation for a local model is answered (or refused) here."""
        return Serving.HERE

    def sampling_defaults(self, model_id: str) -> Json:
        defaults = self._preset(model_id).defaults()
        return {name: defaults[name] for name in REPORTED_SAMPLING if name in defaults}

    async def check_reasoning_effort(self, model_id: str, effort: str | None) -> None:
        if effort in (None, "none"):
            return
        await self.load(model_id)  # its template, and so its reasoning family, is read once loaded
        reasoning.request_params(self.local_models[self._preset(model_id).model.id].reasoning_format, effort)

    def takes_images(self, model_id: str) -> bool:
        """Whether the model reads images: it has a projector (settings/model.py)."""
        return self._preset(model_id).model.takes_images

    def context_length(self, model_id: str) -> int | None:
        """The model's window: as configured, else as its engine found it (None before it loads)."""
        return self.local_models[self._preset(model_id).model.id].window

    async def probe(self) -> bool:
        return self.readiness()[0]

    def readiness(self) -> tuple[bool, str]:
        # Lazy models load on demand: only the eager ones must be up for the service to be
        # ready, unless their keep_alive unloaded them (they load again on demand too).
        waiting = [
            f"{model_id} ({self.lifecycles[model_id].state.value})"
            for model_id, model in self.local_models.items()
            if self._eager(model.config)
            and not (self.lifecycles[model_id].ready and model.ready() or self.lifecycles[model_id].expired)
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
            "owned_by": owned_by(config),
            "state": lifecycle.state.value,
            "load": "eager" if self._eager(config) else "lazy",
            "aliases": config.aliases,
            "personas": [config.persona_id(persona) for persona in config.personas],
            "loaded_at": lifecycle.loaded_at,
            "loads": lifecycle.loads,
            "error": lifecycle.error,
            "n_ctx": model.window,
            "kv_size": model.kv_size,
            "slots": config.slots,
            "takes_images": config.takes_images,  # a projector: mmproj, or a synthetic vision shape's
            "mmproj": config.mmproj,  # as configured (null: none, or written with a synthetic model)
            # As configured, and whether the running build offloads at all (null until loaded).
            "gpu": {**config.gpu(), "offload": model.gpu_offload},
            "tool_format": model.tool_format,  # the model's own tool calling (null until loaded)
            "reasoning_format": model.reasoning_format,  # its reasoning family (null: none, or not loaded)
            "memory": model.memory(),
            "keep_alive": config.keep_alive,
            "expires_at": lifecycle.expires_at,
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

    @overload
    async def _serve(self, model: LocalModel, answer: Callable[[], Awaitable[Json]], request: Json | None = None) -> Json: ...

    @overload
    async def _serve(self, model: LocalModel, answer: Callable[[], Awaitable[Objects]], request: Json | None = None) -> Objects: ...

    async def _serve(self, model: LocalModel, answer: Callable[[], Awaitable[Objects]], request: Json | None = None) -> Objects:
        """Run ``answer()`` with the model loaded (loading it if needed), and keep it loaded
        until the answer, or the stream of chunks, is done; then for its keep_alive (the
        request's, else the model's)."""
        keep_alive = _keep_alive(request or {})
        hold = contextlib.AsyncExitStack()
        await hold.enter_async_context(self.lifecycles[model.config.id].use(self.settings.model_load_timeout, keep_alive))
        try:
            result = await answer()
        except BaseException:
            await hold.aclose()
            raise
        if isinstance(result, dict):
            await hold.aclose()
            return result
        return Held(result, hold)

    async def chat_completion(self, model_id: str, request: Json) -> Objects:
        return await self._chat_completion(model_id, request, prime=True)

    async def chat_completion_objects(self, model_id: str, request: Json) -> Objects:
        """The engine's answers are objects already. A stream comes back unstarted: its
        callers (Responses, Messages, a Realtime session, a background response) open their
        own stream first and answer the engine's refusals in it (``response.failed``,
        Anthropic's ``error`` event), so a long prompt's tokenizing, queueing and first chunk
        of prefill (3.5 to 25 s for 10,000 tokens on 2 shared cores, issue #59) come after
        their ``response.created``, not before; the request's own mistakes (its parameters,
        its tools' schemas, a ``max_tokens`` no model allows) are still refused here, before."""
        return await self._chat_completion(model_id, request, prime=False)

    async def _images(self, preset: Preset, request: Json) -> Json:
        """``request`` with its images checked and in the worker's form, for a model that takes
        them (images.py); a text-only model's are refused by params.py, naming the part."""
        if not preset.model.takes_images:
            return request
        messages = await with_images(request["messages"], self.image_limits, self._image_downloads)
        return request if messages is request["messages"] else {**request, "messages": messages}

    def _image_downloads(self) -> ImageDownloads:
        if self._downloads is None:
            from .image_downloads import ImageDownloads

            self._downloads = ImageDownloads(self.settings)
        return self._downloads

    async def _chat_completion(self, model_id: str, request: Json, prime: bool) -> Objects:
        preset = self._preset(model_id)
        prediction.check(request)  # the client's own parameters, before a persona's defaults
        model = self.local_models[preset.model.id]
        request = await self._images(preset, request)
        # Sized by the input: a thread for a long list (issue #39).
        params = await off_loop(
            many_values(request.get("messages")), chat_params, preset.chat_request(request), model.n_ctx,
            preset.model.max_tokens_beyond_context, model.max_tokens_ceiling,
        )
        # Whose cached KV it may reuse (engine/prefixes.py).
        params.update(tenant=tenant.get(), shared_messages=preset.shared_messages(params["messages"]))
        # To the engine worker holding the chat's beginning, when the model has several: by
        # its messages as the engine gets them (a persona's system prompt first), for every
        # tenant alike when that beginning is shared by them all.
        keyed = {"messages": without_data(params["messages"][:1]), "prompt_cache_key": request.get("prompt_cache_key")}
        route = route_key(keyed, "" if params["shared_messages"] else tenant.get()) if len(model.workers) > 1 else b""
        answer = lambda: self._generate(model, model_id, "chat", params, ChatShaper, route, prime)  # noqa: E731
        return await self._serve(model, answer, request)

    async def completion(self, model_id: str, request: Json) -> Objects:
        preset = self._preset(model_id)
        model = self.local_models[preset.model.id]
        prompts = prompt_count(request.get("prompt"))
        capacity = model.config.parallel * model.config.slots
        if prompts > 1 and prompts * (request.get("n") or 1) > capacity:
            # All prompts of a request run at once (a stream's must all be running before
            # its first byte), so they must fit in the model's sequences together: counted
            # before any prompt is decoded (1.4 M token arrays took 30 s to be refused).
            raise bad_request(f"A request can have at most {capacity} prompts x n for this model.", "prompt", "invalid_value")
        params = await off_loop(
            many_values(request.get("prompt")) or first_use(request.get("prompt")),
            completion_params,
            preset.completion_request(request, model_id),
            model.n_ctx,
            preset.model.token_ids == "native",
            preset.model.max_tokens_beyond_context,
            model.max_tokens_ceiling,
        )
        params["tenant"] = tenant.get()
        prompts = params.pop("prompts")

        def one(prompt_params: Json) -> Awaitable[Objects]:
            return self._generate(model, model_id, "completion", prompt_params, CompletionShaper)

        if len(prompts) == 1:
            return await self._serve(model, lambda: one({**params, "prompt": prompts[0]}), request)
        return await self._serve(model, lambda: fan_out(params, prompts, one), request)

    @staticmethod
    async def _generate(
        model: LocalModel, model_id: str, op: str, params: Json, shaper: type[ChatShaper], route: bytes = b"",
        prime: bool = True,
    ) -> Objects:
        """The answer; a stream ``prime``d (its first chunk in hand: the engine's refusals are
        still HTTP errors, ``streams.primed``) or not (``chat_completion_objects``)."""
        params["tool_format"] = model.tool_format  # how its answers are read (tool_formats/)
        if op == "chat":
            # The model's reasoning (known once loaded): its template's switch and budget.
            params.update(reasoning.request_params(model.reasoning_format, params.pop("reasoning_effort", None)))
        shape = shaper(model_id, model.fingerprint, params)
        need = params.get("n", 1)
        if not params["stream"]:
            return shape.completion(await model.run(op, params, need, route))
        chunks = shape.chunks(model.stream(op, params, need, route))
        return await primed(chunks) if prime else chunks

    async def prompt_tokens(self, model_id: str, request: Json) -> int:
        """How many tokens the prompt of a chat ``request`` is, counted as it would be
        generated from: the model's chat template (persona and tool instructions included)
        and tokenizer, in the engine worker, between two decoding steps."""
        preset = self._preset(model_id)
        model = self.local_models[preset.model.id]
        request = await self._images(preset, request)
        # Sized by the input: a thread for a long list (issue #39).
        params = await off_loop(
            many_values(request.get("messages")), chat_params, preset.chat_request(request), model.n_ctx,
            preset.model.max_tokens_beyond_context, model.max_tokens_ceiling,
        )

        async def answer() -> Json:
            count = {"messages": params["messages"], "tools": params["tools"], "tool_choice": params["tool_choice"], "tenant": tenant.get()}
            events = await model.run("count", count, need=0)
            return next(event["data"] for event in events if event["event"] == "result")

        return (await self._serve(model, answer))["prompt_tokens"]

    async def embedding(self, model_id: str, request: Json) -> Json:
        preset = self._preset(model_id)
        model = self.local_models[preset.model.id]
        request = preset.embedding_request(request, model_id)
        large = many_values(request.get("input")) or first_use(request.get("input"))
        inputs = await off_loop(large, embedding_inputs, request, preset.model.token_ids == "native")

        async def answer() -> Json:
            events = await model.run("embedding", {"input": inputs, "dimensions": request.get("dimensions")}, need=0)
            result = next(event["data"] for event in events if event["event"] == "result")
            return embedding_response(model_id, result, request.get("encoding_format", "float"))

        return await self._serve(model, answer)


def _keep_alive(request: Json) -> Any:
    """A request's ``keep_alive`` (Ollama's extension; its shape checked by the extension
    document): seconds, or None for never; else the model's own."""
    if request.get("keep_alive") is None:
        return MODEL_KEEP_ALIVE
    try:
        return keep_alive_seconds(request["keep_alive"])
    except ValueError as exc:
        raise bad_request(f"Invalid 'keep_alive': {exc}.", "keep_alive", "invalid_value") from None
