"""The model registry of the settings: the local backends (each imported only when
configured: a pure gateway never loads the engine's packages) and the upstream APIs, each of
the kind its ``api`` names (OpenAI's, or a kind a family brings: ``Family.upstreams``)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

from .. import families as registry
from ..backends.base import Backend
from ..backends.events import ModelEvents
from ..backends.pool import PoolPolicy
from ..backends.registry import ModelRegistry
from ..families.family import Family, upstream_kinds
from ..settings import Settings


def _kind(kinds: Mapping[str, str], api: str) -> type:
    """The upstream backend class of ``api`` ("module:Class" in ``kinds``), imported now."""
    if api not in kinds:
        raise ValueError(f"no registered family serves upstreams of api: {api}")
    module, _, attribute = kinds[api].partition(":")
    return getattr(importlib.import_module(module), attribute)


def model_registry(settings: Settings, events: ModelEvents, families: Sequence[Family] | None = None) -> ModelRegistry:
    """``families``: whose local backends and upstream kinds join the core's (the registered
    families when not given)."""
    families = registry.FAMILIES if families is None else families
    local: list[Backend] = []
    if settings.local_models:
        from ..backends.llama.backend import LlamaBackend

        llama = LlamaBackend(settings, events)
        local.append(llama)
        embedding_model = None
        if settings.embedding_model:
            from ..backends.embedding.backend import EmbeddingModel

            embedding_model = EmbeddingModel(settings)
            local.append(embedding_model)
        if settings.local_moderation and (embedding_model or settings.moderation_guard):
            from ..moderation.guard import Guard
            from ..moderation.model import ModerationModel

            guard = Guard(llama, settings.moderation_guard) if settings.moderation_guard else None
            local.append(ModerationModel(embedding_model, guard, settings.moderation_inputs, settings.moderation_guard_inputs))
        if settings.transcription_model or settings.speech_model:
            from ..backends.audio.backend import AudioBackend

            # A transcription takes every core only while no chat sequence decodes.
            engines_busy = lambda: any(model.sequences_in_use() for model in llama.local_models.values())  # noqa: E731
            local.append(AudioBackend(settings, events, engines_busy))
        local += [backend for family in families for backend in family.local(settings, events)]
    configs = settings.upstream_configs()
    upstreams = []
    if configs:
        from ..backends.upstream.backend import UpstreamBackend  # aiohttp: loaded only for an upstream

        named = upstream_kinds(families)
        classes = {"openai": UpstreamBackend} | {api: _kind(named, api) for api in {config.api for config in configs} - {"openai"}}
        upstreams = [classes[config.api](config, settings) for config in configs]
    # The catch-all and the default upstream speak OpenAI's API: another kind is only its models'.
    speaking_openai = [upstream for upstream in upstreams if upstream.api == "openai"]
    catch_all = speaking_openai[0] if speaking_openai and settings.upstream_catch_all else None
    policy = PoolPolicy(settings.pool_cooldown, settings.pool_cooldown_max, settings.pool_probe_interval)
    weights = {config.name: config.weight for config in configs}
    return ModelRegistry(local, upstreams, catch_all, events, settings.fallbacks, policy, weights)
