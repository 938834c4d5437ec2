"""Which backend answers for a model id, and the model status events of the local ones.

In order: local models and their aliases; then upstream APIs whose configured ids, aliases or
glob patterns (``gpt-*``, ``o*``) match; then, when enabled, the default upstream for any
other id. Otherwise the model does not exist (404 ``model_not_found``).

An id that several backends name exactly (a local model and upstreams, or several
upstreams), or that has ``fallbacks``, is answered by a pool of them (``pool.py``).

An operation reaches the model's backend through ``serving(model_id, capability)``, typed by
the capability (``capabilities.py``), or is refused there, in one place, for a model whose
backend does not serve it: 400 ``model_not_supported`` naming ``model`` and what the model is.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar, cast

from .. import errors
from ..errors import OpenAIError
from ..json.types import Json
from .base import Backend, Capability, ModelCard, Relayed, Serving, Stream
from .capabilities import MANAGED, Forwarding
from .events import ModelEvents
from .pool import Deployment, ModelPool, PoolPolicy


B = TypeVar("B")


class ModelRegistry:
    def __init__(
        self,
        local: list[Backend],
        upstreams: list[Backend] | None = None,
        catch_all: Backend | None = None,
        events: ModelEvents | None = None,
        fallbacks: dict[str, list[str]] | None = None,
        policy: PoolPolicy | None = None,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.local = local
        self.upstreams = upstreams or []
        self.catch_all = catch_all
        self.events = events or ModelEvents()
        self.events.loaded_models = self.loaded_models
        self.pools = self._pools(fallbacks or {}, policy or PoolPolicy(), weights or {})

    def _pools(self, fallbacks: dict[str, list[str]], policy: PoolPolicy, weights: dict[str, float]) -> dict[str, ModelPool]:
        named: dict[str, list[Backend]] = {}
        # An Anthropic upstream's models are never pooled: a pool answers OpenAI's operations
        # through its deployments, and theirs pass through to that one upstream.
        pooled = [backend for backend in self.backends if not _anthropic(backend)]
        for backend in pooled:
            for model_id in backend.configured_ids():
                if backend not in named.setdefault(model_id, []):
                    named[model_id].append(backend)
        for model_id in fallbacks:
            if model_id not in named and (routed := self._route(model_id)) is not None and not _anthropic(routed):
                named[model_id] = [routed]
        return {
            model_id: ModelPool(
                model_id,
                [Deployment(b.name, b, weights.get(b.name, 1.0)) for b in backends],
                policy,
                fallbacks.get(model_id, []),
                self.serving,
            )
            for model_id, backends in named.items()
            if len(backends) > 1 or model_id in fallbacks
        }

    @property
    def backends(self) -> list[Backend]:
        """In routing order: local ones first."""
        return [*self.local, *self.upstreams]

    @property
    def default_upstream(self) -> Forwarding | None:
        """Where operations nobody serves here are forwarded: the first upstream configured
        that speaks OpenAI's API (an Anthropic one answers only its models' Messages)."""
        speaking_openai = (upstream for upstream in self.upstreams if not _anthropic(upstream))
        return cast(Forwarding | None, next(speaking_openai, None))

    def local_models(self) -> list[ModelCard]:
        return [card for backend in self.local for card in backend.models()]

    def backend_for(self, model_id: str) -> Backend:
        pool = self.pools.get(model_id)
        if pool is not None:
            return pool
        backend = self._route(model_id)
        if backend is None:
            raise errors.model_not_found(model_id)
        return backend

    def _route(self, model_id: str) -> Backend | None:
        for backend in self.backends:
            if backend.claims(model_id):
                return backend
        return self.catch_all

    def serving(self, model_id: str, capability: Capability[B]) -> B:
        """The backend of ``model_id``, as ``capability`` types it: 404 ``model_not_found``
        for no such model, and the one refusal of an operation its backend does not serve
        (a chat asked of an audio model, a load of an upstream's model)."""
        backend = self.backend_for(model_id)
        kind = backend.model_kind(model_id)
        if capability not in kind.capabilities:
            raise errors.model_not_supported(model_id, f"{capability.what}: it is {kind.what}")
        return cast(B, backend)

    def backend_for_or_none(self, model_id: str) -> Backend | None:
        try:
            return self.backend_for(model_id)
        except OpenAIError:
            return None

    def canonical(self, model_id: str) -> str:
        """The model ``model_id`` names, as this service names it: a local model's id for
        its aliases and personas, an upstream alias's target when that id is routed to the
        same upstream, a pool's id; any other id itself. What per-model limits, prices and
        the metered usage key on (``http/project_limits.py``), so that an alias costs and
        counts as its model does."""
        if model_id in self.pools:
            return model_id
        backend = self._route(model_id)
        if backend is None:
            return model_id
        named = backend.canonical_id(model_id)
        # An upstream alias's target is the upstream's id: the same model here only if it
        # is routed there too (``smollm2`` may be a local model beside ``lab-smol: smollm2``).
        return named if named == model_id or self._route(named) is backend else model_id

    def served_here(self, operation_id: str | None, model_id: str) -> bool:
        """Whether this service's own code answers a request of ``operation_id`` for
        ``model_id`` (``Serving.HERE``): a local model, pooled or not, or the Responses API
        of a ``responses: local`` upstream. An unknown model is not (its 404 follows)."""
        backend = self.backend_for_or_none(model_id)
        return backend is not None and backend.serving(operation_id) is Serving.HERE

    async def models(self) -> list[ModelCard]:
        """Every backend's models that requests would be routed to it for, local ones first
        (an upstream's list may be stale, or empty when it cannot be fetched)."""
        await asyncio.gather(*(backend.refresh_models() for backend in self.backends))
        cards = []
        seen = set()
        for backend in self.backends:
            for card in backend.models():
                owner = self.backend_for_or_none(card.id)
                if card.id not in seen and (owner is backend or owner is self.pools.get(card.id)):
                    seen.add(card.id)
                    cards.append(card)
        return cards

    async def model(self, model_id: str) -> Json | Relayed:
        """One model as ``GET /v1/models/{model}`` shows it."""
        return await self.backend_for(model_id).retrieve_model(model_id)

    # --- model management (local models: upstream ones are not ours to load) ---

    def loaded_models(self) -> list[str]:
        return [model_id for backend in self.backends for model_id in backend.loaded_models()]

    def statuses(self) -> list[Json]:
        """Each model's status; a pooled one shows its deployments (health, load, cooldown)."""
        statuses = [status for backend in self.backends for status in backend.statuses()]
        by_id = {status["id"]: status for status in statuses}
        for pool in self.pools.values():
            for status in pool.statuses():
                if status["id"] in by_id:
                    by_id[status["id"]].update(deployments=status["deployments"], fallbacks=status["fallbacks"])
                else:
                    statuses.append(status)
        return statuses

    async def watch(self) -> Stream[tuple[str, Json]]:
        """A ``status`` snapshot of every local model, then each status event as it happens."""
        # Subscribing and taking the snapshot happen in one step of the event loop, so no
        # change falls between them.
        subscription = self.events.subscribe()
        try:
            yield "status", {"models": self.statuses(), "loaded": self.loaded_models()}
            async for event in subscription:
                yield event
        finally:
            await subscription.aclose()

    async def load(self, model_id: str) -> Json:
        return await self.serving(model_id, MANAGED).load(model_id)

    async def unload(self, model_id: str) -> Json:
        return await self.serving(model_id, MANAGED).unload(model_id)

    async def start(self) -> None:
        for backend in [*self.backends, *self.pools.values()]:
            await backend.start()

    async def stop(self) -> None:
        for backend in [*self.pools.values(), *self.backends]:
            await backend.stop()

    def readiness(self) -> tuple[bool, str]:
        states = [backend.readiness() for backend in self.backends]
        return all(ok for ok, _ in states), "; ".join(detail for _, detail in states if detail)


def _anthropic(backend: Backend) -> bool:
    """An upstream of Anthropic's Messages API (``families/messages/backend.py``): only its models' Messages."""
    return getattr(backend, "api", "openai") == "anthropic"
