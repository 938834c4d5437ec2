"""Tag ``Batch``: batches served here over the Files store (serving/batches/, docs/BATCHES.md)."""

from ..http.context import caller, current, current_owner
from ..http.rendering import json_response
from ..serving.batches import service


async def create_batch(body: dict):
    return json_response(await service.create(current(), current_owner(), body, caller().key))


async def retrieve_batch(batch_id: str):
    return json_response(await service.retrieve(current(), current_owner(), batch_id))


async def cancel_batch(batch_id: str):
    return json_response(await service.cancel(current(), current_owner(), batch_id))


async def list_batches(after: str | None = None, limit: int = 20, **_):
    return json_response(await service.list_page(current(), current_owner(), after, limit))
