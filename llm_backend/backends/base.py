"""The one small interface every backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

Json = dict[str, Any]


@dataclass
class Relayed:
    """An answer already in wire form, from an upstream API: passed on to the client as it
    came (status, headers, bytes), so nothing is parsed or re-encoded on the way.

    ``content`` is the whole body when it was small and complete; otherwise ``chunks``
    yields it as it arrives and ``close`` releases the upstream request (client gone)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    close: Callable[[], Awaitable[None]] | None = None


# A non-streaming answer is one OpenAI object; a streaming one, the chunks as they come;
# an upstream's answer is relayed as it is.
Answer = Json | AsyncIterator[Json] | Relayed


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

    async def chat_completion(self, model_id: str, request: Json) -> Answer: ...

    async def completion(self, model_id: str, request: Json) -> Answer: ...

    async def embedding(self, model_id: str, request: Json) -> Json | Relayed: ...


class LocalBackend(Backend, Protocol):
    """A backend whose models this service loads and unloads (the admin operations)."""

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
