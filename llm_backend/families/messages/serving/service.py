"""The Messages operations: the request made the service's chat request
(``request.py``), asked of the model's backend by the same call the Responses layer
makes (``chat_completion_objects``: a local engine's answer, or an OpenAI-compatible
upstream's chat answer parsed), and its answer made Anthropic's (``answer.py``).

Thinking on a model without reasoning (the chat pipeline refuses ``reasoning_effort``
for it): ``thinking: {type: "adaptive"}`` leaves the choice to the model, and a model that
cannot think answers without thinking (what Claude Code sends; its effort steers thinking
that does not happen); ``thinking: {type: "enabled"}`` or an effort without adaptive
thinking is refused, a 400 naming the field, as Anthropic refuses thinking on a model
without it.

Tokens: a local engine counts an answer's tokens itself (usage, limits, spend: the metrics'
one place); an upstream's answer is counted by ``counted`` (the controller's: it knows the
request) with the chat usage, exactly as a chat request's would be.

A model of an Anthropic upstream (its backend relays the Messages operations: ``serving``
is ``RELAYED``) is not translated (``passed``, asked first): the request is passed through as
the client sent it (its bytes, its query: ``?beta=true``) and its answer relayed, metered on
the way (``passthrough.py``).

Before a request is translated, its lists and stop sequences are counted against the lane's
bounds (``bounds.py``) and the thinking blocks it sends back checked against their
signatures, bound to the tenant (``signatures.py``): for a request and a Message Batch's
line alike, beside the event loop when the body was large (``off_loop.py``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from llm_backend.backends import capabilities
from llm_backend.backends.base import Capability, Relayed, Serving, tenant
from llm_backend.budgets import check_lists
from llm_backend.errors import OpenAIError, bad_request, named_as
from llm_backend.json.types import Json
from llm_backend.off_loop import large_input, off_loop
from llm_backend.serving.services import Services

from . import answer, bounds, passthrough
from .request import chat_request
from .signatures import ThinkingSignatures

Counted = Callable[[Json], None]
CHAT = "createChatCompletion"


def _chat(body: Json, stream: bool, signatures: ThinkingSignatures) -> Json:
    """The chat request of ``body``: its lists and stop sequences within the lane's bounds
    before any item is read (``bounds.py``), its thinking blocks this tenant's
    (``signatures.py``), then its lists counted again as chat's."""
    bounds.check(body)
    signatures.check(body)
    chat = chat_request(body, stream)
    check_lists(CHAT, chat)
    return chat


async def _checked_chat(services: Services, body: Json, stream: bool) -> tuple[Json, ThinkingSignatures]:
    """``_chat``'s request (off the loop when the body was large: its walk is sized by it),
    and the signatures of this request's tenant."""
    signatures = ThinkingSignatures(services.reasoning_seal.key, tenant.get())
    return await off_loop(large_input(), _chat, body, stream, signatures), signatures


def _backend(services: Services, body: Json, capability: Capability[Any]) -> Any:
    return services.registry.serving(body["model"], capability)  # 404 model_not_found, 400 model_not_supported


async def _without_thinking(body: Json, chat: Json, ask: Callable[[Json], Awaitable[Any]]) -> Any:
    """``ask(chat)``; a model without reasoning asked for a reasoning effort: see the docstring."""
    try:
        return await ask(chat)
    except OpenAIError as error:
        if error.param != "reasoning_effort" or "reasoning_effort" not in chat:
            raise
        if (body.get("thinking") or {}).get("type") == "adaptive":
            return await ask({key: value for key, value in chat.items() if key != "reasoning_effort"})
        param = "thinking" if (body.get("thinking") or {}).get("type") == "enabled" else "output_config.effort"
        raise bad_request(f"'{param}' is not supported by this model: it does not reason ({error.message})", param, "unsupported_parameter") from None


async def passed(
    services: Services, operation_id: str, body: Json, counted: Counted, raw: bytes | None = None, query: bytes = b""
) -> Relayed | None:
    """The upstream's answer when ``body``'s model is an Anthropic upstream's (None: it is
    not, and ``create`` or ``count_tokens`` answers): the request passed through (``raw``:
    its bytes when the client's are at hand, else ``body`` encoded), its usage told to
    ``counted`` piece by piece as the answer passes, each piece only what it adds."""
    backend = services.registry.backend_for_or_none(body["model"])
    if backend is None or backend.serving(operation_id) is not Serving.RELAYED:
        return None
    content = raw if raw is not None else await off_loop(large_input(), _encoded, body)
    # A Messages operation relayed: an Anthropic upstream answers it (never pooled: backends/registry.py).
    return await passthrough.passed(cast(passthrough.Messages, backend), operation_id, query, content, counted)


def _encoded(body: Json) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def create(services: Services, body: Json, counted: Counted) -> Json | AsyncIterator[answer.Event]:
    """The Message for ``body``, or its events when ``stream`` is set."""
    model_id = body["model"]
    stream = bool(body.get("stream"))
    chat, signatures = await _checked_chat(services, body, stream)
    backend = _backend(services, body, capabilities.CHAT)
    completion = await _without_thinking(body, chat, lambda chat: _named_as_messages(backend.chat_completion_objects(model_id, chat)))
    sign = signatures.sign
    # The window once the answer has begun: a local model's is known once it has loaded.
    room = answer.Room(backend.context_length(model_id), body.get("max_tokens"))
    if stream:
        return _counted_events(completion, model_id, counted, sign, room, services.settings.stream_keepalive_seconds)
    counted(completion.get("usage") or {})
    return answer.message(completion, model_id, sign, room)


# The chat request's fields (request.py) a refusal names, as Messages names them (Anthropic's
# own 400 for a max_tokens no model gives names max_tokens).
AS_MESSAGES = {"max_completion_tokens": "max_tokens"}


async def _named_as_messages(work: Awaitable[Any]) -> Any:
    return await named_as(work, AS_MESSAGES)


async def _counted_events(
    chunks: AsyncIterator[Json], model_id: str, counted: Counted, sign: answer.Sign, room: answer.Room, keepalive: float
) -> AsyncIterator[answer.Event]:
    async def watched() -> AsyncIterator[Json]:
        try:
            async for chunk in chunks:
                if chunk.get("usage"):
                    counted(chunk["usage"])
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    async for event in answer.events(watched(), model_id, sign, room, keepalive):
        yield event


async def count_tokens(services: Services, body: Json, counted: Counted) -> Json:
    """``POST /v1/messages/count_tokens``: the prompt's tokens as the model reads them. A
    local model counts them with its chat template and tokenizer (nothing is generated); an
    upstream's are what it reports for the chat request with one output token (a real,
    metered request: OpenAI's chat API has no count of its own); an Anthropic upstream
    counts them itself (its own operation, free)."""
    model_id = body["model"]
    chat, _ = await _checked_chat(services, body, stream=False)
    if services.registry.backend_for(model_id).serving(CHAT) is Serving.HERE:
        counting = _backend(services, body, capabilities.PROMPT_TOKENS)
        tokens = await _without_thinking(body, chat, lambda chat: counting.prompt_tokens(model_id, chat))
        return {"input_tokens": tokens}
    backend = _backend(services, body, capabilities.CHAT)
    probe = {**chat, "max_completion_tokens": 1}
    completion = await _without_thinking(body, probe, lambda chat: backend.chat_completion_objects(model_id, chat))
    usage = completion.get("usage") or {}
    counted(usage)
    return {"input_tokens": usage.get("prompt_tokens") or 0}
