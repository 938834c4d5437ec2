"""What the vector store operations mean beyond the spec's validation: OpenAI's rules for
ids, chunking, attributes and expiry, the objects, and work handed to the indexer.

Everything is checked before anything is stored (a rejected request stores nothing):
unknown file ids are a 404 before the store or batch exists. Adding files returns at
once with the files ``in_progress``; the indexer (``retrieval/indexer.py``) finishes them.
All storage work runs in worker threads (``Database.run``).
"""

from __future__ import annotations

from typing import Any

from .. import errors
from ..errors import OpenAIError, bad_request, file_not_found
from ..errors import file_batch_not_found as batch_not_found
from ..errors import vector_store_file_not_found as store_file_not_found
from ..errors import vector_store_not_found as store_not_found
from ..json.types import Json
from ..retrieval.chunking import parse_strategy
from ..retrieval.extraction import ExtractionError, text_pieces
from ..storage.storable import problem
from ..storage.vector_stores import CursorNotFound, NewStoreFile
from .metadata import check_metadata
from .lists import Order, check_limit, list_object, list_order
from .services import Services

ATTRIBUTES_MAX = 16
ATTRIBUTE_KEY_MAX = 64
ATTRIBUTE_VALUE_MAX = 512
# Text in one page of a file's content (a few hundred pages of a book).
PAGE_CHARS = 1_000_000
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


def check_attributes(attributes: Any, param: str = "attributes") -> Json:
    """OpenAI's limits: 16 pairs, keys up to 64 characters, values strings (up to 512),
    numbers or booleans. The spec states them too; they are checked here again because a
    batch's per-file ``files[].attributes`` arrive the same way."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    if len(attributes) > ATTRIBUTES_MAX:
        raise bad_request(f"Invalid '{param}': at most {ATTRIBUTES_MAX} attributes.", param, "object_above_max_properties")
    for key, value in attributes.items():
        if problem(key, ATTRIBUTE_KEY_MAX):
            raise bad_request(f"Invalid '{param}': keys are at most {ATTRIBUTE_KEY_MAX} characters.", param, "invalid_value")
        if isinstance(value, str):
            if problem(value, ATTRIBUTE_VALUE_MAX):
                raise bad_request(
                    f"Invalid '{param}.{key}': strings are at most {ATTRIBUTE_VALUE_MAX} characters.", f"{param}.{key}", "invalid_value"
                )
        elif not isinstance(value, (int, float, bool)):
            raise bad_request(
                f"Invalid type for '{param}.{key}': expected a string, number or boolean.", f"{param}.{key}", "invalid_type"
            )
    return dict(attributes)


def check_expiry(expires_after: Any, param: str = "expires_after") -> Json | None:
    if expires_after is None:
        return None
    if not isinstance(expires_after, dict) or expires_after.get("anchor") != "last_active_at":
        raise bad_request(f"Invalid '{param}.anchor': expected 'last_active_at'.", f"{param}.anchor", "invalid_value")
    days = expires_after.get("days")
    if isinstance(days, float) and days.is_integer():
        days = int(days)  # JSON Schema's integer includes 7.0
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise bad_request(f"Invalid '{param}.days': expected an integer between 1 and 365.", f"{param}.days", "invalid_value")
    return {"anchor": "last_active_at", "days": days}


def _chunking(strategy: Any, param: str = "chunking_strategy") -> Json:
    """The strategy as a vector store file shows it; 400 naming the parameter's path."""
    try:
        return parse_strategy(strategy).as_openai()
    except OpenAIError as error:
        if param != "chunking_strategy" and error.param:
            error.param = error.param.replace("chunking_strategy", param, 1)
            error.message = error.message.replace("'chunking_strategy", f"'{param}", 1)
        raise


def _page_args(limit: int, order: str | None) -> tuple[int, Order]:
    return check_limit(limit), list_order(order)


class VectorStoreService:
    """The vector store operations of one request's caller (``owner``)."""

    def __init__(self, services: Services, owner: str) -> None:
        self.services = services
        self.owner = owner
        self.stores = services.database.vector_stores
        self.batches = services.database.vector_store_batches
        self.run = services.database.run

    @property
    def retrieval(self) -> Any:
        return self.services.retrieval

    async def _require_files(self, file_ids: list[str], param: str) -> None:
        missing = await self.run(self.stores.missing_files, self.owner, file_ids)
        if missing:
            raise file_not_found(missing[0], param)

    async def _fillable(self, store_id: str) -> None:
        """404 for a store that is not the caller's, 400 for an expired one."""
        store = await self.get(store_id)
        if store["status"] == "expired":
            raise errors.vector_store_expired(store_id)

    def _queue(self, store_id: str, file_ids: list[str]) -> None:
        for file_id in file_ids:
            self.retrieval.indexer.submit(self.owner, store_id, file_id)

    # --- stores -----------------------------------------------------------------------------

    async def create(self, body: Json) -> Json:
        metadata = check_metadata(body.get("metadata"))
        expires_after = check_expiry(body.get("expires_after"))
        chunking = _chunking(body.get("chunking_strategy"))
        file_ids = list(dict.fromkeys(body.get("file_ids") or []))
        await self._require_files(file_ids, "file_ids")
        files = [NewStoreFile(file_id, {}, chunking) for file_id in file_ids]
        store = await self.run(
            self.stores.create, self.owner, body.get("name"), metadata, expires_after, files, body.get("description")
        )
        self._queue(store["id"], file_ids)
        return store

    async def get(self, store_id: str) -> Json:
        store = await self.run(self.stores.get, self.owner, store_id)
        if store is None:
            raise store_not_found(store_id)
        return store

    async def list(self, limit: int, order: str | None, after: str | None, before: str | None) -> Json:
        limit, order = _page_args(limit, order)
        try:
            data, has_more = await self.run(self.stores.list, self.owner, limit, order, after, before)
        except CursorNotFound as missing:
            raise store_not_found(str(missing)) from None
        return list_object(data, has_more)

    async def modify(self, store_id: str, body: Json) -> Json:
        changes: Json = {}
        if "name" in body:
            changes["name"] = body["name"]
        if "metadata" in body:
            changes["metadata"] = check_metadata(body["metadata"])
        if "expires_after" in body:
            changes["expires_after"] = check_expiry(body["expires_after"])
            if (await self.get(store_id))["status"] == "expired":
                raise errors.vector_store_expired(store_id)  # expiry is final
        store = await self.run(self.stores.update, self.owner, store_id, changes)
        if store is None:
            raise store_not_found(store_id)
        return store

    async def delete(self, store_id: str) -> Json:
        store_seq = await self.run(self.services.database.vector_index.delete_store, self.owner, store_id)
        if store_seq is None:
            raise store_not_found(store_id)
        self.retrieval.searcher.forget(store_seq)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    # --- files of a store -------------------------------------------------------------------

    async def add_file(self, store_id: str, body: Json) -> Json:
        attributes = check_attributes(body.get("attributes"))
        chunking = _chunking(body.get("chunking_strategy"))
        file_id = body["file_id"]
        await self._fillable(store_id)
        await self._require_files([file_id], "file_id")
        added = await self.run(self.stores.add_file, self.owner, store_id, NewStoreFile(file_id, attributes, chunking))
        if added is None:
            raise store_not_found(store_id)
        shown, is_new = added
        if is_new:
            self._queue(store_id, [file_id])
        return shown

    async def get_file(self, store_id: str, file_id: str) -> Json:
        shown = await self.run(self.stores.get_file, self.owner, store_id, file_id)
        if shown is None:
            raise await self._missing(store_id, file_id)
        return shown

    async def _missing(self, store_id: str, file_id: str) -> OpenAIError:
        """The store's 404 if the store is unknown, else the file's."""
        if await self.run(self.stores.get, self.owner, store_id) is None:
            return store_not_found(store_id)
        return store_file_not_found(store_id, file_id)

    async def list_files(
        self,
        store_id: str,
        limit: int,
        order: str | None,
        after: str | None,
        before: str | None,
        status: str | None,
        batch_id: str | None = None,
    ) -> Json:
        limit, order = _page_args(limit, order)
        if status is not None and status not in FILE_STATUSES:
            raise bad_request(f"Invalid 'filter': expected one of {', '.join(FILE_STATUSES)}.", "filter", "invalid_value")
        if batch_id is not None and await self.run(self.batches.get_batch, self.owner, store_id, batch_id) is None:
            raise (await self._missing_batch(store_id, batch_id))
        try:
            found = await self.run(self.stores.list_files, self.owner, store_id, limit, order, after, before, status, batch_id)
        except CursorNotFound as missing:
            raise store_file_not_found(store_id, str(missing)) from None
        if found is None:
            raise store_not_found(store_id)
        return list_object(*found)

    async def set_attributes(self, store_id: str, file_id: str, attributes: Any) -> Json:
        attributes = check_attributes(attributes)
        if not await self.run(self.services.database.vector_index.update_attributes, self.owner, store_id, file_id, attributes):
            raise await self._missing(store_id, file_id)
        return await self.get_file(store_id, file_id)

    async def remove_file(self, store_id: str, file_id: str) -> Json:
        if not await self.run(self.services.database.vector_index.remove_file, self.owner, store_id, file_id):
            raise await self._missing(store_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    async def file_content(self, store_id: str, file_id: str) -> Json:
        """The file's text as indexing extracts it, as pieces of text up to ``PAGE_CHARS``
        (a large file is never read whole: issue #33); ``has_more`` when the text goes on.
        The document gives no way to ask for a later page, so ``next_page`` is null. Empty
        for a file whose text cannot be extracted (its ``last_error`` says why)."""
        await self.get_file(store_id, file_id)
        found = await self.run(self.retrieval.file_store().locate, self.owner, file_id)
        if found is None:
            raise store_file_not_found(store_id, file_id)
        meta, path = found

        def first_page() -> tuple[list[Json], bool]:
            parts: list[Json] = []
            size = 0
            try:
                for piece in text_pieces(path, meta["filename"], meta.get("mime_type")):
                    if size >= PAGE_CHARS:
                        return parts, True
                    piece = piece[: PAGE_CHARS - size]
                    parts.append({"type": "text", "text": piece})
                    size += len(piece)
            except ExtractionError:
                return [], False
            return parts, False

        data, has_more = await self.run(first_page)
        return {"object": "vector_store.file_content.page", "data": data, "has_more": has_more, "next_page": None}

    # --- batches ----------------------------------------------------------------------------

    async def create_batch(self, store_id: str, body: Json) -> Json:
        shared_chunking = body.get("chunking_strategy")
        shared_attributes = check_attributes(body.get("attributes"))
        if "file_ids" in body and "files" in body:
            raise bad_request("Provide either 'file_ids' or 'files', not both.", "files", "invalid_value")
        files: list[NewStoreFile] = []
        if "files" in body:
            for index, entry in enumerate(body["files"]):
                param = f"files[{index}]"
                attributes = check_attributes(entry.get("attributes"), f"{param}.attributes") if "attributes" in entry else shared_attributes
                strategy = entry.get("chunking_strategy", shared_chunking)
                files.append(NewStoreFile(entry["file_id"], attributes, _chunking(strategy, f"{param}.chunking_strategy")))
            param = "files"
        else:
            chunking = _chunking(shared_chunking)
            files = [NewStoreFile(file_id, shared_attributes, chunking) for file_id in body.get("file_ids") or []]
            param = "file_ids"
        if not files:
            raise bad_request("Missing required parameter: 'file_ids'.", "file_ids", "missing_required_parameter")
        await self._fillable(store_id)
        await self._require_files([new.file_id for new in files], param)
        created = await self.run(self.batches.create_batch, self.owner, store_id, files)
        if created is None:
            raise store_not_found(store_id)
        batch, added = created
        self._queue(store_id, added)
        return batch

    async def _missing_batch(self, store_id: str, batch_id: str) -> OpenAIError:
        if await self.run(self.stores.get, self.owner, store_id) is None:
            return store_not_found(store_id)
        return batch_not_found(batch_id)

    async def get_batch(self, store_id: str, batch_id: str) -> Json:
        batch = await self.run(self.batches.get_batch, self.owner, store_id, batch_id)
        if batch is None:
            raise await self._missing_batch(store_id, batch_id)
        return batch

    async def cancel_batch(self, store_id: str, batch_id: str) -> Json:
        batch = await self.run(self.batches.cancel_batch, self.owner, store_id, batch_id)
        if batch is None:
            raise await self._missing_batch(store_id, batch_id)
        return batch

    # --- search -----------------------------------------------------------------------------

    async def search(self, store_id: str, body: Json) -> Json:
        """``Searcher.search`` (validates, then reads); the store counts as used."""
        page = await self.run(
            self.retrieval.searcher.search,
            self.owner,
            [store_id],
            body.get("query"),
            body.get("max_num_results", 10),
            body.get("filters"),
            body.get("ranking_options"),
            rewrite_query=bool(body.get("rewrite_query")),
        )
        await self.run(self.stores.touch, self.owner, [store_id])
        return page

