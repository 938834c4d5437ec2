"""What the config file presets for a model id, applied to an OpenAI request body before a
backend sees it: default sampling parameters, and a persona's system prompt."""

from __future__ import annotations

from dataclasses import dataclass

from .. import errors
from ..json.types import Json
from ..settings.model import ModelConfig, Persona


# The sampling parameters an answer may report as used (a Response object does).
REPORTED_SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


@dataclass(frozen=True)
class Preset:
    """What one public model id means: a configured model, maybe through a persona."""

    model: ModelConfig
    persona: Persona | None = None

    def defaults(self) -> Json:
        values = self.model.defaults.values()
        if self.persona:
            values.update(self.persona.defaults.values())
        return values

    def chat_request(self, request: Json) -> Json:
        """The chat request with defaults filled in and the persona's system prompt first."""
        request = with_defaults(request, self.defaults())
        if self.persona:
            system = {"role": "system", "content": self.persona.system_prompt}
            request["messages"] = [system, *request["messages"]]
        return request

    def shared_messages(self, messages: list[Json]) -> int:
        """How many leading messages every tenant may share the cached KV of: a persona's
        system prompt declared shared, or a system prompt the model lists (prefix cache)."""
        if self.persona:
            return 1 if self.persona.shared_prefix else 0
        first = messages[0] if messages else {}
        shared = first.get("role") in ("system", "developer") and first.get("content") in self.model.shared_prefixes
        return 1 if shared else 0

    def completion_request(self, request: Json, model_id: str) -> Json:
        self._refuse_persona(model_id, "completions")
        return with_defaults(request, self.defaults())

    def embedding_request(self, request: Json, model_id: str) -> Json:
        self._refuse_persona(model_id, "embeddings")
        if not self.model.embedding:
            raise errors.model_not_supported(model_id, "embeddings")
        return request

    def _refuse_persona(self, model_id: str, endpoint: str) -> None:
        # A persona is a system prompt: it means nothing without chat messages.
        if self.persona:
            raise errors.chat_model_only(model_id, endpoint)


def with_defaults(request: Json, defaults: Json) -> Json:
    """``request`` with each default set where the client sent nothing (or null)."""
    request = dict(request)
    for name, value in defaults.items():
        if name == "max_tokens" and request.get("max_completion_tokens") is not None:
            continue
        if request.get(name) is None:
            request[name] = value
    return request


def presets(models: list[ModelConfig]) -> dict[str, Preset]:
    """Every public id of ``models`` (ids, aliases, personas) and what it means."""
    table: dict[str, Preset] = {}
    for model in models:
        for model_id in (model.id, *model.aliases):
            table[model_id] = Preset(model)
        for persona in model.personas:
            table[model.persona_id(persona)] = Preset(model, persona)
    return table
