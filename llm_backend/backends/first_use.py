"""What a backend of models loaded on first use in the API process has in common (the
embedding model, ``embedding/``; the moderation classifier): a fixed list of ids, nothing to start,
nothing the admin operations load or unload, every operation answered here. What its models
serve is what the subclass implements (its ``embedding``, its ``moderation``: the
capabilities of ``capabilities.py`` it has every method of); any other operation is the
registry's one refusal, naming what the model is (``kind``)."""

from __future__ import annotations

import time
from typing import ClassVar

from .. import errors
from ..json.types import Json
from .base import ModelCard, ModelKind, Serving
from .capabilities import implemented


class FirstUseModels:
    """The model-list and lifecycle half of ``Backend`` for ``ids`` (set by the subclass)."""

    name = "local"  # where it runs, for logs, metrics and pools (as the local chat models)
    ids: list[str] | tuple[str, ...]
    kind = "a local model"
    """What the model is, in a refusal: ``an embedding model (use /v1/embeddings)``."""
    _model_kind: ClassVar[ModelKind]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._model_kind = ModelKind(cls.kind, implemented(cls))

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

    def model_kind(self, model_id: str) -> ModelKind:
        return self._model_kind

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

    def serving(self, operation_id: str | None) -> Serving:
        """Answered (or refused) here, never forwarded."""
        return Serving.HERE
