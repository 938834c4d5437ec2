"""Which backend answers for a model id, and the model status events of the local ones.

In order: local models and their aliases; then upstream APIs whose configured ids, aliases or
glob patterns (``gpt-*``, ``o*``) match; then, when enabled, the default upstream for any
other id. Otherwise the model does not exist (404 ``model_not_found``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..errors import OpenAIError, bad_request, model_not_found
from .base import Backend, Json, LocalBackend, ModelCard, Relayed
from .events import ModelEvents
from .upstream.backend import UpstreamBackend


class ModelRegistry:
    def __init__(
        self,
        local: list[LocalBackend],
        upstreams: list[UpstreamBackend] | None = None,
        catch_all: UpstreamBackend | None = None,
        events: ModelEvents | None = None,
    ) -> None:
        self.local = local
        self.upstreams = upstreams or []
        self.catch_all = catch_all
        self.events = events or ModelEvents()
        self.events.loaded_models = self.loaded_models
        self._index_local()

    def _index_local(self) -> None:
        self._local_cards = {card.id: (card, backend) for backend in self.local for card in backend.models()}

    def local_models(self) -> list[ModelCard]:
        return [card for card, _ in self._local_cards.values()]

    @property
    def backends(self) -> list:
        return [*self.local, *self.upstreams]

    def backend_for(self, model_id: str) -> Backend:
        local = self._local_cards.get(model_id)
        if local is not None:
            return local[1]
        for upstream in self.upstreams:
            if upstream.claims(model_id):
                return upstream
        if self.catch_all is not None:
            return self.catch_all
        raise model_not_found(model_id)

    async def models(self) -> list[ModelCard]:
        """Local models, then each upstream's models that requests would be routed to it for
        (a stale or empty upstream list when it cannot be fetched)."""
        await asyncio.gather(*(upstream.refresh_models() for upstream in self.upstreams))
        cards = self.local_models()
        seen = set(self._local_cards)
        for upstream in self.upstreams:
            for card in upstream.models():
                if card.id not in seen and self.backend_for_or_none(card.id) is upstream:
                    seen.add(card.id)
                    cards.append(card)
        return cards

    def backend_for_or_none(self, model_id: str) -> Backend | None:
        try:
            return self.backend_for(model_id)
        except OpenAIError:
            return None

    async def model(self, model_id: str) -> Json | Relayed:
        """One model as ``GET /v1/models/{model}`` shows it: a local card, or the upstream's."""
        local = self._local_cards.get(model_id)
        if local is not None:
            return local[0].to_openai()
        backend = self.backend_for(model_id)
        return await backend.retrieve_model(model_id)

    # --- model management (local models: upstream ones are not ours to load) ---

    def _local_backend(self, model_id: str) -> LocalBackend:
        local = self._local_cards.get(model_id)
        if local is None:
            if self.backend_for_or_none(model_id) is not None:
                raise bad_request(f"The model `{model_id}` is served by an upstream API; only local models are loaded here.", "model")
            raise model_not_found(model_id)
        return local[1]

    def loaded_models(self) -> list[str]:
        return [model_id for backend in self.local for model_id in backend.loaded_models()]

    def statuses(self) -> list[Json]:
        return [status for backend in self.local for status in backend.statuses()]

    async def watch(self) -> AsyncIterator[tuple[str, Json]]:
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
        return await self._local_backend(model_id).load(model_id)

    async def unload(self, model_id: str) -> Json:
        return await self._local_backend(model_id).unload(model_id)

    async def start(self) -> None:
        for backend in self.backends:
            await backend.start()
        self._index_local()

    async def stop(self) -> None:
        for backend in self.backends:
            await backend.stop()

    def readiness(self) -> tuple[bool, str]:
        states = [backend.readiness() for backend in self.backends]
        return all(ok for ok, _ in states), "; ".join(detail for _, detail in states if detail)
