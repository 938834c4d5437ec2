"""Which backend answers for a model id, and the model status events of all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..errors import model_not_found
from .base import Backend, Json, ModelCard
from .events import ModelEvents


class ModelRegistry:
    def __init__(self, backends: list[Backend], events: ModelEvents | None = None) -> None:
        self.backends = backends
        self.events = events or ModelEvents()
        self.events.loaded_models = self.loaded_models

    def models(self) -> list[ModelCard]:
        return [card for backend in self.backends for card in backend.models()]

    def card(self, model_id: str) -> ModelCard:
        for card in self.models():
            if card.id == model_id:
                return card
        raise model_not_found(model_id)

    def backend_for(self, model_id: str) -> Backend:
        for backend in self.backends:
            if any(card.id == model_id for card in backend.models()):
                return backend
        raise model_not_found(model_id)

    def loaded_models(self) -> list[str]:
        return [model_id for backend in self.backends for model_id in backend.loaded_models()]

    def statuses(self) -> list[Json]:
        return [status for backend in self.backends for status in backend.statuses()]

    async def watch(self) -> AsyncIterator[tuple[str, Json]]:
        """A ``status`` snapshot of every model, then each status event as it happens."""
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
