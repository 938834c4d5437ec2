"""Which backend answers for a model id."""

from __future__ import annotations

from .base import Backend, ModelCard
from ..errors import model_not_found


class ModelRegistry:
    def __init__(self, backends: list[Backend]) -> None:
        self.backends = backends

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

    async def start(self) -> None:
        for backend in self.backends:
            await backend.start()

    async def stop(self) -> None:
        for backend in self.backends:
            await backend.stop()

    def readiness(self) -> tuple[bool, str]:
        states = [backend.readiness() for backend in self.backends]
        return all(ok for ok, _ in states), "; ".join(detail for _, detail in states if detail)
