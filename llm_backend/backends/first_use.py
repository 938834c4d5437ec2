"""What a backend of models loaded on first use in the API process has in common (the
retrieval embedder, the moderation classifier): a fixed list of ids, nothing to start,
nothing the admin operations load or unload, every operation answered here - the one it
serves by the subclass, the others refused with a 400 naming what the model is for."""

from __future__ import annotations

import time
from typing import Any

from .. import errors
from ..errors import bad_request
from ..json_types import Json
from .base import ModelCard, Relayed, Serving


class FirstUseModels:
    """The model-list and lifecycle half of ``Backend`` for ``ids`` (set by the subclass)."""

    manages_models = False
    name = "local"  # where it runs, for logs, metrics and pools (as the local chat models)
    ids: list[str] | tuple[str, ...]
    kind = "a local model"
    """What the model is, in a refusal: ``an embedding model (use /v1/embeddings)``."""

    def __init__(self) -> None:
        self.created = int(time.time())

    async def start(self) -> None:
        """Nothing to do: the model loads on first use."""

    async def stop(self) -> None:
        """Nothing held beyond what the subclass drops."""

    def readiness(self) -> tuple[bool, str]:
        return True, ""

    async def probe(self) -> bool:
        return True

    def claims(self, model_id: str) -> bool:
        return model_id in self.ids

    def configured_ids(self) -> list[str]:
        return list(self.ids)

    def canonical_id(self, model_id: str) -> str:
        return model_id

    def models(self) -> list[ModelCard]:
        return [ModelCard(model_id, "llm-backend:local", self.created) for model_id in self.ids]

    async def refresh_models(self) -> None:
        """The configured ids are the list."""

    async def retrieve_model(self, model_id: str) -> Json:
        if not self.claims(model_id):
            raise errors.model_not_found(model_id)
        return ModelCard(model_id, "llm-backend:local", self.created).to_openai()

    def loaded_models(self) -> list[str]:
        return []  # not loaded or unloaded through the admin operations

    def statuses(self) -> list[Json]:
        return []

    async def load(self, model_id: str) -> Json:
        raise bad_request(f"The model `{model_id}` loads on first use; it is not managed here.", "model")

    unload = load

    def serving(self, operation_id: str | None) -> Serving:
        """Answered (or refused) here, never forwarded."""
        return Serving.HERE

    def sampling_defaults(self, model_id: str) -> Json:
        return {}  # it samples nothing

    async def check_reasoning_effort(self, model_id: str, effort: str | None) -> None:
        return None  # it does not chat: the chat operation itself is refused

    def context_length(self, model_id: str) -> None:
        return None  # no chat context: it does not generate

    async def forward(self, method: str, path: str, query: bytes, headers: Any, content: bytes | None) -> Relayed:
        raise AssertionError("local models are never forwarded")  # always Serving.HERE

    # --- the operations it does not serve (a subclass overrides the one it does) ------------

    def _refused(self, model_id: str, operation: str) -> errors.OpenAIError:
        return errors.model_not_supported(model_id, f"{operation}: it is {self.kind}")

    async def chat_completion(self, model_id: str, request: Json) -> Any:
        raise self._refused(model_id, "text generation")

    async def chat_completion_objects(self, model_id: str, request: Json) -> Any:
        raise self._refused(model_id, "text generation")

    async def completion(self, model_id: str, request: Json) -> Any:
        raise self._refused(model_id, "text generation")

    async def prompt_tokens(self, model_id: str, request: Json) -> int:
        raise self._refused(model_id, "text generation")

    async def embedding(self, model_id: str, request: Json) -> Any:
        raise self._refused(model_id, "embeddings")

    async def transcription(self, model_id: str, request: Json) -> Any:
        raise self._refused(model_id, "audio transcriptions")

    async def speech(self, model_id: str, request: Json) -> Any:
        raise self._refused(model_id, "speech")

    async def moderation(self, model_id: str, request: Json) -> Any:
        raise self._refused(model_id, "moderations")
