"""The one small interface every backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

Json = dict[str, Any]
# A non-streaming answer is one OpenAI object; a streaming one, the chunks as they come.
Answer = Json | AsyncIterator[Json]


@dataclass(frozen=True)
class ModelCard:
    """A model id as ``GET /v1/models`` lists it (aliases get a card each)."""

    id: str
    owned_by: str
    created: int

    def to_openai(self) -> Json:
        return {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}


class Backend(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def models(self) -> list[ModelCard]:
        """Every id served, loaded or not: models, aliases, personas."""
        ...

    def readiness(self) -> tuple[bool, str]: ...

    def loaded_models(self) -> list[str]:
        """Ids of the models loaded right now (configured ids, not aliases)."""
        ...

    def statuses(self) -> list[Json]:
        """One admin status object per configured model (see extensions.yaml ``ModelStatus``)."""
        ...

    async def load(self, model_id: str) -> Json:
        """Load the model ``model_id`` names (any of its ids) and return its status."""
        ...

    async def unload(self, model_id: str) -> Json:
        """Unload the model ``model_id`` names and return its status."""
        ...

    async def chat_completion(self, model_id: str, request: Json) -> Answer: ...

    async def completion(self, model_id: str, request: Json) -> Answer: ...

    async def embedding(self, model_id: str, request: Json) -> Json: ...
