"""The upstream backend: models served by an OpenAI-compatible API, answered by relaying it.

``UpstreamApi`` is what every upstream has, whatever API it speaks (its client, its models
and their list, nothing loaded here); ``UpstreamBackend`` is OpenAI's API on it: chat,
completions and embeddings relayed through its methods, any other operation forwarded
(``UPSTREAM_MODEL``). An upstream of another API is a family's (``Family.upstreams``)."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from ... import errors
from ...json.text import LARGE_BODY
from ...json.types import Json
from ...off_loop import large_input, off_loop
from ...settings import Settings, UpstreamConfig
from ..base import ModelCard, ModelKind, Objects, Relayed, Serving, StreamedBody, caller_headers
from ..capabilities import UPSTREAM_MODEL
from .answers import chat_answer
from .http_client import UpstreamClient, read_within
from .prompt_cache import TenantCache
from .relay import relay
from .stream_usage import metered, withheld

log = logging.getLogger(__name__)
# After a failed model list fetch, try again this soon rather than after the full TTL.
MODELS_RETRY_SECONDS = 10.0


# What an upstream backend answers through its own methods (aliases, stored completions);
# any other operation for one of its models is forwarded to it verbatim.
SERVED_OPERATIONS = frozenset({"createChatCompletion", "createCompletion", "createEmbedding", "retrieveModel"})
# With ``responses: local``, the Responses API is served here over the upstream's chat.
RESPONSES_HERE = frozenset({"createResponse", "Compactconversation"})
# Anthropic's Messages API is always served here, over the upstream's chat (families/messages/serving/).
MESSAGES_HERE = frozenset({"messagesCreate", "messagesCountTokens"})


class UpstreamApi:
    """One upstream API: the models it is configured for, and a pooled client to it."""

    api: str  # the API it speaks (``UpstreamConfig.api``)

    def __init__(self, config: UpstreamConfig, settings: Settings) -> None:
        self.name = config.name
        self.patterns = config.models
        self.aliases = config.aliases
        self.client = UpstreamClient(config, settings)
        self.responses_here = config.responses == "local"
        # ``isolate_prompt_cache``: each tenant's generations keyed apart in the upstream's cache.
        self.tenant_cache = TenantCache.of(config)
        # A per-client key may see other models than ours: then the list is not shared.
        self.models_ttl = 0.0 if settings.upstream_pass_client_key else settings.upstream_models_ttl
        self._cards: list[ModelCard] = []
        self._fresh_until = 0.0
        self._refreshing: asyncio.Lock | None = None

    async def start(self) -> None:
        self._refreshing = asyncio.Lock()
        await self.client.start()

    async def stop(self) -> None:
        await self.client.aclose()

    def readiness(self) -> tuple[bool, str]:
        # Not probed: an upstream outage must not take the local models out of rotation.
        return True, ""

    def claims(self, model_id: str) -> bool:
        """Whether the config routes ``model_id`` here (an alias, an id or a glob pattern)."""
        return model_id in self.aliases or any(fnmatch.fnmatchcase(model_id, p) for p in self.patterns)

    def configured_ids(self) -> list[str]:
        literal = [p for p in self.patterns if not any(c in p for c in "*?[")]
        return [*literal, *self.aliases]

    def canonical_id(self, model_id: str) -> str:
        return self.aliases.get(model_id, model_id)

    async def probe(self) -> bool:
        return await self.client.probe()

    # --- the model list ---------------------------------------------------------------

    def models(self) -> list[ModelCard]:
        """The upstream's models as last fetched, and our aliases of them."""
        return self._cards

    async def refresh_models(self) -> None:
        """Fetch the upstream's model list when the cached one is older than the TTL. A
        failure keeps the last list (or none): the local models are listed regardless."""
        if time.monotonic() < self._fresh_until:
            return
        async with self._refreshing or asyncio.Lock():
            if time.monotonic() < self._fresh_until:
                return
            try:
                self._cards = self._cards_from(await self._fetch_models())
                self._fresh_until = time.monotonic() + self.models_ttl
            except (errors.OpenAIError, aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as exc:
                log.warning("upstream %s: model list unavailable (%s)", self.name, type(exc).__name__)
                self._fresh_until = time.monotonic() + min(self.models_ttl, MODELS_RETRY_SECONDS)

    async def _fetch_models(self, incoming: list | None = None, query: bytes = b"") -> list[Json]:
        """The upstream's ``GET /models`` data, asked with the caller's headers (or
        ``incoming``: an API that needs its own, ``families/messages/backend.py``)."""
        headers = self.client.headers(caller_headers.get() if incoming is None else incoming)
        response = await self.client.send("GET", "/models", headers=headers, query=query)
        try:
            if response.status != 200:
                raise errors.upstream_refused(response.status, "model list")
            listed = await read_within(response, self.client.read_limit)
            return (await off_loop(len(listed) > LARGE_BODY, json.loads, listed))["data"]
        finally:
            response.release()

    def _cards_from(self, data: list[Json]) -> list[ModelCard]:
        cards = [ModelCard(item["id"], item.get("owned_by", self.name), int(item.get("created", 0))) for item in data]
        by_id = {card.id: card for card in cards}
        for alias, target in self.aliases.items():
            if target in by_id:
                cards.append(ModelCard(alias, by_id[target].owned_by, by_id[target].created))
        return cards

    # --- nothing of it is loaded here ---------------------------------------------------

    def loaded_models(self) -> list[str]:
        return []

    def statuses(self) -> list[Json]:
        return []


class UpstreamBackend(UpstreamApi):
    """An upstream of OpenAI's API (``api: openai``)."""

    api = "openai"

    def model_kind(self, model_id: str) -> ModelKind:
        return UPSTREAM_MODEL

    def serving(self, operation_id: str | None) -> Serving:
        if self.responses_here and operation_id in RESPONSES_HERE or operation_id in MESSAGES_HERE:
            return Serving.HERE
        return Serving.RELAYED if operation_id in SERVED_OPERATIONS else Serving.FORWARDED

    async def check_reasoning_effort(self, model_id: str, effort: str | None) -> None:
        return None  # the upstream's answer says

    def context_length(self, model_id: str) -> None:
        return None  # the upstream's to know

    def sampling_defaults(self, model_id: str) -> Json:
        return {}  # the upstream's own, unknown here

    # --- operations ---------------------------------------------------------------------

    async def _send_post(self, path: str, model_id: str, request: Json) -> aiohttp.ClientResponse:
        upstream_id = self.aliases.get(model_id)
        if upstream_id is not None:
            request = {**request, "model": upstream_id}
        # Sized by the request: beside the loop when its body was large (off_loop.py).
        content = await off_loop(large_input(), _encoded, request)
        headers = self.client.headers(caller_headers.get())
        return await self.client.send("POST", path, headers=headers, content=content)

    async def _post(self, path: str, model_id: str, request: Json) -> Relayed:
        response = await self._send_post(path, model_id, request)
        rename = ("model", model_id) if model_id in self.aliases else None
        return await relay(response, self.client, rename=rename)

    async def _generated(self, path: str, model_id: str, request: Json) -> Relayed:
        """A chat completion or completion: a stream always asks for its usage (the meter
        counts it), shown to the client only if it asked (``stream_usage.py``)."""
        request = self._own_cache(request)
        asking = metered(request)
        if asking is None:
            return await self._post(path, model_id, request)
        return withheld(await self._post(path, model_id, asking))

    def _own_cache(self, request: Json) -> Json:
        return request if self.tenant_cache is None else self.tenant_cache.request(request)

    async def chat_completion(self, model_id: str, request: Json) -> Relayed:
        return await self._generated("/chat/completions", model_id, request)

    async def chat_completion_objects(self, model_id: str, request: Json) -> Objects:
        """The upstream's chat completion parsed (the object, or its chunks), not relayed."""
        response = await self._send_post("/chat/completions", model_id, self._own_cache(request))
        return await chat_answer(response, self.name, self.client.timeout, self.client.read_limit)

    async def completion(self, model_id: str, request: Json) -> Relayed:
        return await self._generated("/completions", model_id, request)

    async def embedding(self, model_id: str, request: Json) -> Relayed:
        return await self._post("/embeddings", model_id, request)

    async def retrieve_model(self, model_id: str) -> Relayed:
        upstream_id = self.aliases.get(model_id, model_id)
        headers = self.client.headers(caller_headers.get())
        response = await self.client.send("GET", f"/models/{quote(upstream_id, safe=':@')}", headers=headers)
        rename = ("id", model_id) if upstream_id != model_id else None
        return await relay(response, self.client, rename=rename)

    async def forward(self, method: str, path: str, query: bytes, headers: Any, content: bytes | StreamedBody | None) -> Relayed:
        """Any other operation, verbatim (see ``http/forwarding.py``)."""
        response = await self.client.send(
            method, path, headers=self.client.headers(headers), content=content or None, query=query
        )
        return await relay(response, self.client)


def _encoded(request: Json) -> bytes:
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()
