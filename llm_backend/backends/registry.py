"""Which backend answers for a model id, and the model status events of the local ones.

In order: local models and their aliases; then upstream APIs whose configured ids, aliases or
glob patterns (``gpt-*``, ``o*``) match; then, when enabled, the default upstream for any
other id. Otherwise the model does not exist (404 ``model_not_found``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from .. import errors
from ..errors import OpenAIError
from .base import Backend, Json, ModelCard, Relayed
from .events import ModelEvents


class ModelRegistry:
    def __init__(
        self,
        local: list[Backend],
        upstreams: list[Backend] | None = None,
        catch_all: Backend | None = None,
        events: ModelEvents | None = None,
    ) -> None:
        self.local = local
        self.upstreams = upstreams or []
        self.catch_all = catch_all
        self.events = events or ModelEvents()
        self.events.loaded_models = self.loaded_models

    @property
    def backends(self) -> list[Backend]:
        """In routing order: local ones first."""
        return [*self.local, *self.upstreams]

    @property
    def default_upstream(self) -> Backend | None:
        """Where operations nobody serves here are forwarded: the first upstream configured."""
        return self.upstreams[0] if self.upstreams else None

    def local_models(self) -> list[ModelCard]:
        return [card for backend in self.local for card in backend.models()]

    def backend_for(self, model_id: str) -> Backend:
        for backend in self.backends:
            if backend.claims(model_id):
                return backend
        if self.catch_all is not None:
            return self.catch_all
        raise errors.model_not_found(model_id)

    def backend_for_or_none(self, model_id: str) -> Backend | None:
        try:
            return self.backend_for(model_id)
        except OpenAIError:
            return None

    async def models(self) -> list[ModelCard]:
        """Every backend's models that requests would be routed to it for, local ones first
        (an upstream's list may be stale, or empty when it cannot be fetched)."""
        await asyncio.gather(*(backend.refresh_models() for backend in self.backends))
        cards = []
        seen = set()
        for backend in self.backends:
            for card in backend.models():
                if card.id not in seen and self.backend_for_or_none(card.id) is backend:
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
        return [status for backend in self.backends for status in backend.statuses()]

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
        return await self.backend_for(model_id).load(model_id)

    async def unload(self, model_id: str) -> Json:
        return await self.backend_for(model_id).unload(model_id)

    async def start(self) -> None:
        for backend in self.backends:
            await backend.start()

    async def stop(self) -> None:
        for backend in self.backends:
            await backend.stop()

    def readiness(self) -> tuple[bool, str]:
        states = [backend.readiness() for backend in self.backends]
        return all(ok for ok, _ in states), "; ".join(detail for _, detail in states if detail)
