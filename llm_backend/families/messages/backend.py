"""An upstream that speaks Anthropic's Messages API (``api: anthropic``): its models answer
``POST /v1/messages`` and ``/v1/messages/count_tokens`` passed through unchanged, the
body's bytes as the client sent them, the client's ``anthropic-version`` and
``anthropic-beta`` on, the upstream's own key as ``x-api-key`` (``backends/upstream/headers.py``;
never the client's, unless ``upstream_pass_client_key``), the answer's bytes relayed as they
come with the headers ``headers.py`` lets back (``backends/upstream/relay.py``). The Messages
service picks this lane by the one predicate (``serving``: ``RELAYED``) and meters the answer
(``serving/passthrough.py``).

OpenAI's operations naming one of its models are refused, a 400 naming ``model``, by the
registry (``backends/registry.serving``): its kind serves none of their capabilities, since
translating chat completions, Responses or embeddings into Messages (and their answers
back) would be a second translation layer beside ``serving/`` for a client that
can speak Messages itself; an Anthropic client is what such an upstream is configured for.
Its model list is Anthropic's (``GET /v1/models`` with ``x-api-key`` and
``anthropic-version``), listed here as its models, owned by the upstream's name. The kind
``api: anthropic`` is this family's (``Family.upstreams``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from llm_backend.backends.base import ModelCard, ModelKind, Relayed, Serving, caller_headers
from llm_backend.backends.upstream.backend import SERVED_OPERATIONS, UpstreamApi
from llm_backend.backends.upstream.relay import relay
from llm_backend.errors import OpenAIError
from llm_backend.json.types import Json

# The Messages operations and their paths below the API root (``base_url`` ends in /v1).
MESSAGES_PATHS = {"messagesCreate": "/messages", "messagesCountTokens": "/messages/count_tokens"}
# The version its model list is asked in when the client named none (a listing of our own).
LIST_VERSION = (b"anthropic-version", b"2023-06-01")
LIST_LIMIT = b"limit=1000"  # Anthropic's most per page
# What its models are, in the registry's refusal of any OpenAI operation naming one.
ANTHROPIC_MODEL = ModelKind(
    "served only through the Messages API here (POST /v1/messages): its upstream speaks Anthropic's API", frozenset()
)


class AnthropicBackend(UpstreamApi):
    """One Anthropic API upstream: the Messages operations relayed, OpenAI's refused."""

    api = "anthropic"

    def model_kind(self, model_id: str) -> ModelKind:
        return ANTHROPIC_MODEL

    def serving(self, operation_id: str | None) -> Serving:
        # Relayed: the spec's fields beyond ours are Anthropic's to define; the registry
        # refuses OpenAI's operations (chat, completions, embeddings; forwarded ones too).
        if operation_id in MESSAGES_PATHS or operation_id in SERVED_OPERATIONS:
            return Serving.RELAYED
        return Serving.FORWARDED

    async def messages(self, operation_id: str, query: bytes, content: bytes) -> Relayed:
        """``POST /v1/messages`` (or ``count_tokens``), the client's body and query as they came."""
        headers = self.client.headers(caller_headers.get())
        response = await self.client.send("POST", MESSAGES_PATHS[operation_id], headers=headers, content=content, query=query)
        # Anthropic's own request id comes as ``upstream-request-id`` (``headers.py``).
        return await relay(response, self.client, error_event=_error_event)

    async def retrieve_model(self, model_id: str) -> Json:
        """OpenAI's shape of one of its models (an ``anthropic-version`` client gets
        Anthropic's from the list: ``controllers/models.py``)."""
        await self.refresh_models()
        card = next((card for card in self._cards if card.id == model_id), ModelCard(model_id, self.name, 0))
        return card.to_openai()

    # --- the model list, Anthropic's -----------------------------------------------------

    async def _fetch_models(self, incoming: list | None = None, query: bytes = LIST_LIMIT) -> list[Json]:
        """The base's, with the ``anthropic-version`` Anthropic's list needs and its largest page."""
        incoming = caller_headers.get() if incoming is None else incoming
        if not any(name == LIST_VERSION[0] for name, _ in incoming):
            incoming = [*incoming, LIST_VERSION]
        return await super()._fetch_models(incoming, query)

    def _cards_from(self, data: list[Json]) -> list[ModelCard]:
        return [ModelCard(item["id"], self.name, _timestamp(item.get("created_at"))) for item in data]


def _timestamp(created_at: Any) -> int:
    """Anthropic's RFC 3339 ``created_at`` as OpenAI's seconds (0 when unreadable)."""
    try:
        return int(datetime.fromisoformat(str(created_at).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _error_event(error: OpenAIError) -> bytes:
    """A stream the upstream broke off, ended with Anthropic's ``error`` event (its SDKs
    raise it; an unnamed OpenAI-shaped event would end the stream looking complete)."""
    kind = "overloaded_error" if error.status in (503, 529) else "api_error"
    data = {"type": "error", "error": {"type": kind, "message": error.message}}
    return b"event: error\ndata: " + json.dumps(data).encode() + b"\n\n"
