"""Anthropic's Message Batches on the batch runner (docs/MESSAGES.md, "Message Batches").

A Message Batch is a batch whose lines are ``POST /v1/messages`` requests: created with its
requests as its lines (``store.py``), run by the one batch runner as any
batch's lines are - each line the request it stands for, through the same pipeline
(``http/batch_lines.py``: admitted as a request of the key that created the batch, its
model's limits and spend hold, the Messages controller, metered as a Messages request),
leases across replicas, resumption after a kill, cancel and the 24-hour expiry - and its
results read from its lines once it has ended, in Anthropic's shape.

What Anthropic checks when a batch is created is checked here (the body's schema: 1 to
100,000 requests, each ``custom_id`` 1-64 characters of ``[a-zA-Z0-9_-]``; each
``custom_id`` once); a request's ``params`` are checked when it runs, as Anthropic checks
them, and a bad one is that request's ``errored`` result. ``stream: true`` is refused
per request before it runs (a batch's answer is whole): its result is that error.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncGenerator

from llm_backend.json.types import Json
from llm_backend.serving.batches.output import answered
from llm_backend.serving.services import Services
from llm_backend.storage.batches import CannotCancel

from ..errors import (
    body as error_body, duplicate_custom_id, message_batch_ended, message_batch_not_found, message_batch_processing,
    streaming_in_batch,
)
from ..store import MessageBatchStore, StillProcessing

WINDOW_SECONDS = 24 * 3600
RESULTS_PAGE = 1000
NOT_RUN: dict[str | None, str] = {"batch_cancelled": "canceled", "batch_expired": "expired"}  # by a line's error code


def _store(services: Services) -> MessageBatchStore:
    return services.database.store(MessageBatchStore)


def _shown(batch: Json, origin: str) -> Json:
    """The batch with its ``results_url`` once it has ended (an absolute URL, as
    Anthropic's: the SDKs fetch it as it is)."""
    if batch["processing_status"] == "ended":
        return {**batch, "results_url": f"{origin}/v1/messages/batches/{batch['id']}/results"}
    return batch


def _requests(body: Json) -> list[tuple[str, Json, Json | None]]:
    """(custom_id, params, the result of a request refused before it runs, or None)."""
    seen: set[str] = set()
    requests = []
    for index, request in enumerate(body["requests"]):
        custom_id, params = request["custom_id"], request["params"]
        if custom_id in seen:
            raise duplicate_custom_id(custom_id, f"requests[{index}].custom_id")
        seen.add(custom_id)
        refused = None
        if params.get("stream") is True:
            error = streaming_in_batch(f"requests[{index}].params.stream")
            refused = answered(custom_id, error.status, error.body(), "req_" + secrets.token_hex(16))
        requests.append((custom_id, params, refused))
    return requests


async def create(services: Services, owner: str, creator: str | None, body: Json, origin: str) -> Json:
    """A new Message Batch of ``owner``'s, made by the key ``creator`` (``Principal.key``):
    its requests run as that key's while it is valid (``http/batch_lines.py``)."""
    requests = _requests(body)
    created = await services.database.run(_store(services).create, owner, creator, requests, WINDOW_SECONDS)
    services.batches.wake()
    return _shown(created, origin)


async def retrieve(services: Services, owner: str, batch_id: str, origin: str) -> Json:
    found = await services.database.run(_store(services).get, owner, batch_id)
    if found is None:
        raise message_batch_not_found(batch_id)
    return _shown(found, origin)


async def list_page(services: Services, owner: str, before_id: str | None, after_id: str | None, limit: int, origin: str) -> Json:
    """Anthropic's page: ``{data, has_more, first_id, last_id}``, newest first."""
    try:
        data, has_more = await services.database.run(_store(services).list, owner, before_id, after_id, limit)
    except LookupError as cursor:
        name = str(cursor.args[0])
        unknown = before_id if name == "before_id" else after_id  # the one the store names: given
        raise message_batch_not_found(unknown or "", name) from None
    data = [_shown(batch, origin) for batch in data]
    return {"data": data, "has_more": has_more, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


async def cancel(services: Services, owner: str, batch_id: str, origin: str) -> Json:
    try:
        canceling = await services.database.run(_store(services).cancel, owner, batch_id)
    except CannotCancel as ended:
        raise message_batch_ended(batch_id, ended.status) from None
    if canceling is None:
        raise message_batch_not_found(batch_id)
    services.batches.wake()
    return _shown(canceling, origin)


async def delete(services: Services, owner: str, batch_id: str) -> Json:
    try:
        deleted = await services.database.run(_store(services).delete, owner, batch_id)
    except StillProcessing as processing:
        raise message_batch_processing(batch_id, processing.processing_status, "a batch can be deleted") from None
    if not deleted:
        raise message_batch_not_found(batch_id)
    return {"id": batch_id, "type": "message_batch_deleted"}


def result(custom_id: str, output: Json | None) -> Json:
    """One line of the results: the stored output line (OpenAI's batch output shape,
    ``serving/batches/output.py``) as Anthropic's result."""
    response = (output or {}).get("response")
    if response is None:
        code: str | None = ((output or {}).get("error") or {}).get("code")
        return {"custom_id": custom_id, "result": {"type": NOT_RUN.get(code, "canceled")}}
    status, answer = response["status_code"], response["body"]
    if status == 200:
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": answer}}
    error = answer.get("error") if isinstance(answer, dict) else None
    said = error.get("message") if isinstance(error, dict) else None
    message = said if isinstance(said, str) else "error"
    return {"custom_id": custom_id, "result": {"type": "errored", "error": error_body(status, message)}}


async def results(services: Services, owner: str, batch_id: str) -> AsyncGenerator[bytes, None]:
    """The results as JSON lines, in the requests' order, read a page at a time (a batch of
    100,000 is never whole in memory); 404 for no such batch, 400 until it has ended."""
    store = _store(services)
    try:
        seq = await services.database.run(store.ended, owner, batch_id)
    except StillProcessing as processing:
        raise message_batch_processing(batch_id, processing.processing_status, "its results can be read") from None
    if seq is None:
        raise message_batch_not_found(batch_id)
    first = await services.database.run(store.outputs, seq, -1, RESULTS_PAGE)

    async def lines() -> AsyncGenerator[bytes, None]:
        page = first
        while page:
            yield b"".join(json.dumps(result(custom_id, output), ensure_ascii=False).encode() + b"\n"
                           for _, custom_id, output in page)
            page = await services.database.run(store.outputs, seq, page[-1][0], RESULTS_PAGE)

    return lines()
