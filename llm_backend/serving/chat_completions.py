"""Stored chat completions between the chat controller and ``storage``: what to keep, how
to assemble a stream into one object, and OpenAI's list and message shapes.

Backends know nothing of this: the controller hands their answer (an object, a chunk
iterator, or an upstream's relayed bytes) to ``record``, which passes it through unchanged
and stores it on the way. The read operations (``stored`` and its neighbours) are here too:
each one store call in the worker thread, and the 404 when nothing is found.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ..backends.base import Answer, Relayed, Stream
from ..errors import chat_completion_not_found as not_found
from ..json.types import Json
from ..storage.chat_completions import CursorNotFound, NewChatCompletion, Page
from . import relayed
from .lists import list_order, page

if TYPE_CHECKING:
    from .services import Services

log = logging.getLogger(__name__)

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
                {"content": [], "refusal": [], "tool_calls": [], "finish_reason": None, "reasoning": []},
            )
            delta = part.get("delta") or {}
            # A reasoning model's (llama.cpp's and DeepSeek's name, or vLLM's newer one).
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                choice["reasoning"].append(thought)
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
        if choice["reasoning"]:
            message["reasoning_content"] = message["reasoning"] = "".join(choice["reasoning"])
        finish_reason = choice["finish_reason"] or ("stop" if finished else "length")
        completion["choices"].append(
            {"index": index, "message": message, "finish_reason": finish_reason, "logprobs": None}
        )
    if usage:
        completion["usage"] = usage
    return completion


async def _recorded(chunks: Stream[Json], save: Callable[[Json, bool], Awaitable[None]]) -> Stream[Json]:
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
    services: Services,
) -> Answer:
    """Store ``answer`` to ``request`` for ``owner`` (``store`` false: an audit-only row) and
    return it for the client. An object is committed before it is answered; a stream is
    committed after its last chunk, before ``[DONE]``."""

    database = services.database

    async def save(completion: Json, finished: bool) -> None:
        await database.run(
            database.chat_completions.save,
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
            ),
        )

    if isinstance(answer, Relayed):
        return await _record_relayed(answer, save, services.settings.upstream_max_read_bytes)
    if isinstance(answer, dict):
        await save(answer, True)
        return answer
    return _recorded(answer, save)


async def _record_relayed(answer: Relayed, save: Callable[[Json, bool], Awaitable[None]], limit: int) -> Relayed:
    """An upstream's answer stored as the client receives it: only a successful one."""
    if answer.status != 200:
        return answer
    if answer.content is not None:
        completion = relayed.parsed(answer)
        if completion is not None and "choices" in completion:
            await save(completion, True)
        return answer

    async def seen(objects: list[Json], finished: bool) -> None:
        chunks = [chunk for chunk in objects if "choices" in chunk]
        if not chunks:
            return
        completion = chunks[0] if chunks[0].get("object") == "chat.completion" else assemble(chunks, finished)
        # Shielded: a client that disconnects cancels the response task (see ``_recorded``).
        with anyio.CancelScope(shield=True):
            try:
                await save(completion, finished)
            except Exception:
                log.exception("could not store relayed chat completion")

    return relayed.observe(answer, seen, limit)


# --- the read operations -----------------------------------------------------------------


async def listed(
    services: Services, owner: str, model: str | None, metadata: dict[str, str], after: str | None, limit: int, order: str
) -> Page:
    """A page of the owner's stored completions; a 404 naming ``after`` when it is unknown."""
    database = services.database
    try:
        return await database.run(
            database.chat_completions.list, owner, model=model, metadata=metadata, after=after, limit=limit, order=list_order(order)
        )
    except CursorNotFound as unknown:  # the ``after`` given
        raise not_found(str(unknown), param="after") from None


async def stored(services: Services, owner: str, completion_id: str) -> Json:
    """The owner's stored completion, else a 404."""
    database = services.database
    return _found(await database.run(database.chat_completions.get, owner, completion_id), completion_id)


async def updated(services: Services, owner: str, completion_id: str, metadata: dict[str, str]) -> Json:
    """The stored completion with its metadata replaced, else a 404."""
    database = services.database
    return _found(await database.run(database.chat_completions.update_metadata, owner, completion_id, metadata), completion_id)


async def delete(services: Services, owner: str, completion_id: str) -> None:
    """Delete the owner's stored completion, else a 404."""
    database = services.database
    if not await database.run(database.chat_completions.delete, owner, completion_id):
        raise not_found(completion_id)


async def stored_request(services: Services, owner: str, completion_id: str) -> Json:
    """The request body a stored completion answered, else a 404."""
    database = services.database
    return _found(await database.run(database.chat_completions.request, owner, completion_id), completion_id)


def _found(value: Json | None, completion_id: str) -> Json:
    if value is None:
        raise not_found(completion_id)
    return value


# --- shapes of the read operations ---------------------------------------------------------


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
    return page(messages, after, limit, order, "message")
