"""The Uploads API: a file of any size sent in parts, then completed into a File.

OpenAI's limits: parts of at most 64 MB, 8 GB in all, an upload usable for an hour. Parts
are streamed to disk as they arrive (never whole in memory; ``storage/uploads.py``);
completing checks the parts named (each once, every byte the upload declared, the ``md5``
if given) before anything is stored, then streams them into one File, which works as any
other (a batch's input file, a vector store's file). A refused operation stores nothing.
Every upload is its creator's: another key gets 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import errors
from ..errors import OpenAIError, bad_request
from ..json.types import Json
from ..storage.files import FileStore
from ..storage.uploads import UploadRefused, UploadStore

if TYPE_CHECKING:
    from .services import Services

log = logging.getLogger(__name__)

MAX_PART_BYTES = 64 * 1024 * 1024
MAX_UPLOAD_BYTES = 8 * 1024 * 1024 * 1024
LIFETIME = 3600
SWEEP_SECONDS = 600


def upload_store(services: Services) -> UploadStore:
    return UploadStore(services.database, services.settings.data_dir / "uploads")


def _refused(problem: UploadRefused, upload_id: str) -> OpenAIError:
    """The client's words for what ``storage/uploads.py`` refused."""
    return errors.upload_refused(problem.reason, problem.details, upload_id, MAX_PART_BYTES)


async def create(services: Services, owner: str, body: Json) -> Json:
    size = body["bytes"]
    if not 1 <= size <= MAX_UPLOAD_BYTES:
        raise bad_request(
            f"Invalid 'bytes': an upload holds from 1 to {MAX_UPLOAD_BYTES} bytes (8 GB), not {size}.", "bytes", "invalid_value"
        )
    expiry = body.get("expires_after")
    return await services.database.run(
        upload_store(services).create,
        owner,
        body["filename"],
        body["purpose"],
        size,
        body["mime_type"],
        expiry["seconds"] if expiry else None,
        LIFETIME,
    )


async def add_part(services: Services, owner: str, upload_id: str, chunks: Iterable[bytes]) -> Json:
    try:
        return await services.database.run(upload_store(services).add_part, owner, upload_id, chunks, MAX_PART_BYTES)
    except UploadRefused as problem:
        raise _refused(problem, upload_id) from None


async def complete(services: Services, owner: str, upload_id: str, body: Json) -> Json:
    files = FileStore(services.database, services.settings.data_dir / "files")
    try:
        return await services.database.run(
            upload_store(services).complete, owner, upload_id, body["part_ids"], body.get("md5"), files
        )
    except UploadRefused as problem:
        raise _refused(problem, upload_id) from None


async def cancel(services: Services, owner: str, upload_id: str) -> Json:
    try:
        return await services.database.run(upload_store(services).cancel, owner, upload_id)
    except UploadRefused as problem:
        raise _refused(problem, upload_id) from None


async def keep(services: Services) -> None:
    """Run for the process's life: remove the bytes of uploads that ended, every
    ``SWEEP_SECONDS`` (any replica may: each folder goes by its row, re-checked under the
    row's lock as it is removed: ``storage/uploads.py``)."""
    while True:
        try:
            removed = await services.database.run(upload_store(services).sweep)
            if removed:
                log.info("removed the parts of %d ended uploads", removed)
        except Exception:
            log.exception("the sweep of ended uploads failed")
        await asyncio.sleep(SWEEP_SECONDS)
