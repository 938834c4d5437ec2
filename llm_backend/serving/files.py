"""Files as the API reads and writes them (``storage/files.py``): each operation one store
call in the worker thread (``Database.run``) and the 404 when this owner has no such file,
so that the controller never reaches the database itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .. import errors
from ..json.types import Json
from ..storage.files import FileStore, FileTooLarge
from .services import Services



def file_store(services: Services) -> FileStore:
    return FileStore(services.database, services.settings.data_dir / "files")


async def create(
    services: Services, owner: str, filename: str, purpose: str, parts: Iterator[bytes], mime_type: str | None,
    expires_at: int | None,
) -> Json:
    """Store an upload read in ``parts``; 413 past ``max_upload_bytes``."""
    limit = services.settings.max_upload_bytes
    try:
        return await services.database.run(
            file_store(services).create, owner, filename, purpose, parts, mime_type, max_bytes=limit, expires_at=expires_at
        )
    except FileTooLarge:
        raise errors.request_too_large(limit) from None


async def listed(
    services: Services, owner: str, purpose: str | None, after: str | None, limit: int, order: str
) -> tuple[list[Json], bool]:
    """A page of the owner's files; a 404 naming ``after`` when it is unknown."""
    try:
        return await services.database.run(file_store(services).list, owner, purpose, after, limit, order)
    except LookupError:
        raise errors.no_such("File", after or "", "after") from None


async def stored(services: Services, owner: str, file_id: str) -> Json:
    found = await services.database.run(file_store(services).get, owner, file_id)
    if found is None:
        raise errors.no_such("File", file_id)
    return found


async def located(services: Services, owner: str, file_id: str) -> tuple[Json, Path]:
    """The file's object and where its bytes are on disk."""
    found = await services.database.run(file_store(services).locate, owner, file_id)
    if found is None:
        raise errors.no_such("File", file_id)
    return found


async def delete(services: Services, owner: str, file_id: str) -> None:
    if not await services.database.run(file_store(services).delete, owner, file_id):
        raise errors.no_such("File", file_id)
