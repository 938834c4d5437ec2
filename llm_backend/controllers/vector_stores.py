"""Tag ``Vector stores``: stores, their files, file batches and search, per API key
(``serving/vector_stores.py``; the index and search: ``retrieval/``, docs/RETRIEVAL.md).

A pure gateway forwards this whole tag to its upstream (``http/forwarding.py``); this
module imports nothing heavy, so it costs a gateway nothing."""

from __future__ import annotations

from typing import Any

from ..http.context import current, current_owner
from ..http.rendering import json_response
from ..serving.vector_stores import VectorStoreService


def _service() -> VectorStoreService:
    return VectorStoreService(current(), current_owner())


async def create_vector_store(body: dict[str, Any] | None = None):
    return json_response(await _service().create(body or {}))


async def list_vector_stores(limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None, **_):
    return json_response(await _service().list(limit, order, after, before))


async def get_vector_store(vector_store_id: str):
    return json_response(await _service().get(vector_store_id))


async def modify_vector_store(vector_store_id: str, body: dict[str, Any] | None = None):
    return json_response(await _service().modify(vector_store_id, body or {}))


async def delete_vector_store(vector_store_id: str):
    return json_response(await _service().delete(vector_store_id))


async def create_vector_store_file(vector_store_id: str, body: dict[str, Any]):
    return json_response(await _service().add_file(vector_store_id, body))


async def list_vector_store_files(
    vector_store_id: str, limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None, **params
):
    return json_response(await _service().list_files(vector_store_id, limit, order, after, before, params.get("filter")))


async def get_vector_store_file(vector_store_id: str, file_id: str):
    return json_response(await _service().get_file(vector_store_id, file_id))


async def update_vector_store_file_attributes(vector_store_id: str, file_id: str, body: dict[str, Any]):
    return json_response(await _service().set_attributes(vector_store_id, file_id, body.get("attributes")))


async def delete_vector_store_file(vector_store_id: str, file_id: str):
    return json_response(await _service().remove_file(vector_store_id, file_id))


async def retrieve_vector_store_file_content(vector_store_id: str, file_id: str):
    return json_response(await _service().file_content(vector_store_id, file_id))


async def create_vector_store_file_batch(vector_store_id: str, body: dict[str, Any]):
    return json_response(await _service().create_batch(vector_store_id, body))


async def get_vector_store_file_batch(vector_store_id: str, batch_id: str):
    return json_response(await _service().get_batch(vector_store_id, batch_id))


async def cancel_vector_store_file_batch(vector_store_id: str, batch_id: str):
    return json_response(await _service().cancel_batch(vector_store_id, batch_id))


async def list_files_in_vector_store_batch(
    vector_store_id: str,
    batch_id: str,
    limit: int = 20,
    order: str = "desc",
    after: str | None = None,
    before: str | None = None,
    **params,
):
    service = _service()
    return json_response(await service.list_files(vector_store_id, limit, order, after, before, params.get("filter"), batch_id))


async def search_vector_store(vector_store_id: str, body: dict[str, Any]):
    return json_response(await _service().search(vector_store_id, body))
