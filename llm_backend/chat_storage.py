"""Stored chat completions between the chat controller and ``storage``: what to keep, how
to assemble a stream into one object, and OpenAI's list and message shapes.

Backends know nothing of this: the controller hands their answer (an object or a chunk
iterator) to ``record``, which passes it through unchanged and stores it on the way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from .backends.base import Answer, Json
from .errors import OpenAIError, bad_request
from .storage.chat_completions import ChatCompletionStore, NewChatCompletion, Page

log = logging.getLogger(__name__)

# OpenAI's limits for metadata (the spec states them only in prose).
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512
LIST_MAX_LIMIT = 100


def _storable(text: str) -> bool:
    """Text every database can hold: no NUL, no unpaired surrogate (JSON allows both)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_metadata(metadata: Any, param: str = "metadata") -> dict[str, str]:
    """``metadata`` if it is within OpenAI's limits, else a 400 naming what is wrong."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    if len(metadata) > METADATA_MAX_PAIRS:
        raise bad_request(
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{METADATA_MAX_PAIRS} properties, but got an object with {len(metadata)} properties instead.",
            param,
            "object_above_max_properties",
        )
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise bad_request(f"Invalid type for '{param}.{key}': expected a string.", f"{param}.{key}", "invalid_type")
        if not (_storable(key) and _storable(value)):
            raise bad_request(
                f"Invalid '{param}': keys and values must be valid Unicode text without NUL characters.",
                param,
                "invalid_value",
            )
        if len(key) > METADATA_MAX_KEY:
            raise bad_request(
                f"Invalid '{param}': key too long. Expected keys of at most {METADATA_MAX_KEY} "
                f"characters, but got a key with length {len(key)} instead.",
                param,
                "string_above_max_length",
            )
        if len(value) > METADATA_MAX_VALUE:
            raise bad_request(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum length "
                f"{METADATA_MAX_VALUE}, but got a string with length {len(value)} instead.",
                f"{param}.{key}",
                "string_above_max_length",
            )
    return metadata


def check_limit(limit: int) -> int:
    if not 1 <= limit <= LIST_MAX_LIMIT:
        raise bad_request(
            f"Invalid 'limit': integer out of range. Expected a value between 1 and {LIST_MAX_LIMIT}, "
            f"but got {limit} instead.",
            "limit",
            "integer_out_of_range",
        )
    return limit


def not_found(completion_id: str, param: str = "completion_id") -> OpenAIError:
    return OpenAIError(404, f"No chat completion found with id '{completion_id}'.", param=param, code="not_found")


# --- storing answers -----------------------------------------------------------------------


def _merge_tool_calls(into: list[Json], deltas: list[Json]) -> None:
    for delta in deltas:
        index = delta.get("index", len(into))
        while len(into) <= index:
            into.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        call = into[index]
        call["id"] = delta.get("id") or call["id"]
        call["type"] = delta.get("type") or call["type"]
        function = delta.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""


def assemble(chunks: list[Json], finished: bool) -> Json:
    """One ``chat.completion`` object from the chunks of a stream. A stream cut short has
    no finish reason; it gets ``length`` (the spec allows no null): it was cut off."""
    first = chunks[0]
    choices: dict[int, Json] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for part in chunk.get("choices") or []:
            choice = choices.setdefault(
                part.get("index", 0),
                {"content": [], "refusal": [], "tool_calls": [], "finish_reason": None},
            )
            delta = part.get("delta") or {}
            if delta.get("content"):
                choice["content"].append(delta["content"])
            if delta.get("refusal"):
                choice["refusal"].append(delta["refusal"])
            if delta.get("tool_calls"):
                _merge_tool_calls(choice["tool_calls"], delta["tool_calls"])
            choice["finish_reason"] = part.get("finish_reason") or choice["finish_reason"]
    completion: Json = {
        "id": first["id"],
        "object": "chat.completion",
        "created": first["created"],
        "model": first["model"],
        "choices": [],
    }
    for key in ("system_fingerprint", "service_tier"):
        if first.get(key) is not None:
            completion[key] = first[key]
    for index in sorted(choices):
        choice = choices[index]
        message: Json = {
            "role": "assistant",
            "content": "".join(choice["content"]) if choice["content"] or not choice["tool_calls"] else None,
            "refusal": "".join(choice["refusal"]) or None,
        }
        if choice["tool_calls"]:
            message["tool_calls"] = choice["tool_calls"]
        finish_reason = choice["finish_reason"] or ("stop" if finished else "length")
        completion["choices"].append(
            {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}
        )
    if usage:
        completion["usage"] = usage
    return completion


async def _recorded(chunks: AsyncIterator[Json], save: Callable[[Json, bool], Awaitable[None]]) -> AsyncIterator[Json]:
    """Pass the chunks through untouched; store what was sent once the stream ends."""
    sent: list[Json] = []
    finished = False
    try:
        async for chunk in chunks:
            sent.append(chunk)
            yield chunk
        finished = True
    finally:
        if sent:
            # A client that disconnects cancels the response task: the write is shielded
            # from that, so what was generated is stored anyway (status "incomplete").
            with anyio.CancelScope(shield=True):
                try:
                    await save(assemble(sent, finished), finished)
                except Exception:
                    log.exception("could not store streamed chat completion")
        await chunks.aclose()


async def record(
    answer: Answer,
    *,
    request: Json,
    owner: str,
    store: bool,
    chat_completions: ChatCompletionStore,
) -> Answer:
    """Store ``answer`` to ``request`` for ``owner`` (``store`` false: an audit-only row) and
    return it for the client. An object is committed before it is answered; a stream is
    committed after its last chunk, before ``[DONE]``."""

    async def save(completion: Json, finished: bool) -> None:
        await chat_completions.save(
            NewChatCompletion(
                id=completion["id"],
                owner=owner,
                model=completion.get("model") or request["model"],
                created=int(completion.get("created") or 0),
                request=request,
                response=completion,
                metadata=request.get("metadata") or {},
                status="completed" if finished else "incomplete",
                store=store,
            )
        )

    if isinstance(answer, dict):
        await save(answer, True)
        return answer
    return _recorded(answer, save)


# --- shapes of the read operations ---------------------------------------------------------


def list_object(data: list[Json], has_more: bool) -> Json:
    """OpenAI's list envelope (``first_id``/``last_id`` are required strings: empty when empty)."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": has_more,
    }


def page_object(page: Page) -> Json:
    return list_object(page.data, page.has_more)


def _message(completion_id: str, index: int, message: Json) -> Json:
    content = message.get("content")
    parts = None
    if isinstance(content, list):
        parts = [part for part in content if part.get("type") in ("text", "image_url")]
        content = "".join(part.get("text", "") for part in content if part.get("type") == "text")
    item: Json = {
        "id": f"{completion_id}-{index}",
        "role": message.get("role"),
        "content": content,
        "refusal": message.get("refusal"),
        "name": message.get("name"),
        "content_parts": parts,
    }
    if message.get("tool_calls"):
        item["tool_calls"] = message["tool_calls"]
    return item


def messages_page(completion_id: str, request: Json, after: str | None, limit: int, order: str) -> Json:
    """The request's messages as OpenAI lists them: ids ``<completion id>-<index>``."""
    messages = [_message(completion_id, index, message) for index, message in enumerate(request.get("messages") or [])]
    if order == "desc":
        messages.reverse()
    if after is not None:
        ids = [message["id"] for message in messages]
        if after not in ids:
            raise OpenAIError(404, f"No message found with id '{after}'.", param="after", code="not_found")
        messages = messages[ids.index(after) + 1 :]
    return list_object(messages[:limit], len(messages) > limit)
