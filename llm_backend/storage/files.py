"""Uploaded files: metadata in the database, bytes in a directory (a volume in k8s).

The bytes are written first, under a temporary name, flushed to disk and renamed to their
final name; only then is the row inserted. A kill -9 at any point leaves either a whole
file with its row, or no row (and at most an orphan ``.partial`` or unreferenced file,
which ``sweep_orphans`` removes). Deleting removes the row, the file from every vector
store (its chunks go with it by cascade) and then the bytes.

Replicas share the directory (a ``ReadWriteMany`` volume) and each sweeps it at start-up,
so an upload in flight is locked by its writer (``flock``, from creating the temporary
file until its row is committed; NFS carries it as a POSIX lock) and the sweep removes
only what it can lock: it never takes another process's upload, and a dead process's
locks are gone with it.

A file past its ``expires_at`` is gone for the API at once (every lookup asks for live
files), and ``expire`` (the sweeper, ``serving/expiry.py``) deletes it for good: row,
store memberships, bytes. Each deletion is one conditional transaction, so replicas
sweeping together delete each file once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..json.types import Json
from . import storable
from .models import StoredFile, VectorStore, VectorStoreFile

if TYPE_CHECKING:
    from .handle import DatabaseHandle

CHUNK = 1 << 20


def live(now: int | None = None) -> ColumnElement:
    """Files not past their ``expires_after``: the only ones the API shows."""
    return or_(StoredFile.expires_at.is_(None), StoredFile.expires_at > (int(time.time()) if now is None else now))


class FileExists(ValueError):
    """A file of that id was created first by another process (its bytes are kept)."""


class FileTooLarge(ValueError):
    """The upload exceeded the configured size limit (nothing is kept)."""


def as_openai(row: StoredFile) -> Json:
    """The file object; ``expires_at`` only when set (the spec does not allow null)."""
    shown: Json = {
        "id": row.id,
        "object": "file",
        "bytes": row.bytes,
        "created_at": row.created_at,
        "filename": row.filename,
        "purpose": row.purpose,
        "status": "processed",
    }
    if row.expires_at is not None:
        shown["expires_at"] = row.expires_at
    return shown


class FileStore:
    def __init__(self, database: DatabaseHandle, directory: Path) -> None:
        self._database = database
        self.directory = Path(directory)

    def create(
        self,
        owner: str,
        filename: str,
        purpose: str,
        parts: Iterable[bytes],
        mime_type: str | None = None,
        max_bytes: int = 512 * 1024 * 1024,
        expires_at: int | None = None,
        file_id: str | None = None,
    ) -> Json:
        """Store the bytes (streamed in ``parts``) and the row; the file object. A caller
        that must not create a file twice (a batch's output) names it: ``file_id``; of two
        processes creating the same one, the first row wins and the other raises
        ``FileExists``. Each writes its bytes under a name of its own (the id and a random
        suffix), so the loser removes only its own bytes, never the winner's."""
        named = file_id is not None
        file_id = file_id or "file-" + secrets.token_hex(12)
        row = StoredFile(
            id=file_id,
            owner=owner,
            filename=filename,
            purpose=purpose,
            mime_type=mime_type,
            created_at=int(time.time()),
            expires_at=expires_at,
        )
        storable.check(row)  # a name no database can hold is refused before the bytes are written
        relative = f"{file_id[-2:]}/{file_id}" + (f".{secrets.token_hex(6)}" if named else "")
        target = self.directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        digest, size = hashlib.sha256(), 0
        out = _new_locked(partial)  # locked until the row is in (see the module docstring)
        try:
            for part in parts:
                size += len(part)
                if size > max_bytes:
                    raise FileTooLarge(f"The file is larger than the {max_bytes} bytes allowed.")
                digest.update(part)
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
            os.replace(partial, target)
            row.bytes, row.sha256, row.path = size, digest.hexdigest(), relative
            with self._database.sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            partial.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            if named:
                raise FileExists(file_id) from None
            raise
        except BaseException:
            partial.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            raise
        finally:
            out.close()
        return as_openai(row)

    def _row(self, owner: str, file_id: str) -> StoredFile | None:
        query = select(StoredFile).where(StoredFile.owner == owner, StoredFile.id == file_id, live())
        with self._database.sessions() as session:
            return session.scalars(query).one_or_none()

    def get(self, owner: str, file_id: str) -> Json | None:
        row = self._row(owner, file_id)
        return as_openai(row) if row else None

    def content(self, owner: str, file_id: str) -> tuple[Json, bytes] | None:
        """The file object, its bytes and MIME type (``mime_type`` key added)."""
        row = self._row(owner, file_id)
        if row is None:
            return None
        return {**as_openai(row), "mime_type": row.mime_type}, (self.directory / row.path).read_bytes()

    def locate(self, owner: str, file_id: str) -> tuple[Json, Path] | None:
        """The file object (with ``mime_type``) and the path of its bytes, to stream them."""
        row = self._row(owner, file_id)
        if row is None:
            return None
        return {**as_openai(row), "mime_type": row.mime_type}, self.directory / row.path

    def list(self, owner: str, purpose: str | None = None, after: str | None = None, limit: int = 10000, order: str = "desc") -> tuple[list[Json], bool]:
        query = select(StoredFile).where(StoredFile.owner == owner, live())
        if purpose is not None:
            query = query.where(StoredFile.purpose == purpose)
        with self._database.sessions() as session:
            if after is not None:
                cursor = session.scalar(select(StoredFile.seq).where(StoredFile.owner == owner, StoredFile.id == after, live()))
                if cursor is None:
                    raise LookupError(after)
                query = query.where(StoredFile.seq > cursor if order == "asc" else StoredFile.seq < cursor)
            seq = StoredFile.seq
            rows = list(session.scalars(query.order_by(seq.asc() if order == "asc" else seq.desc()).limit(limit + 1)))
        return [as_openai(row) for row in rows[:limit]], len(rows) > limit

    def delete(self, owner: str, file_id: str, expired: bool = False) -> bool:
        """The row, the file in every vector store of the owner (chunks cascade), then the
        bytes; a file past its expiry is already gone for the API (``expired``: the sweeper's
        delete of exactly those)."""
        alive = live()
        with self._database.sessions.begin() as session:
            # The row goes first, and only one transaction can delete it: replicas sweeping
            # the same expired file delete it (and count it) once.
            query = delete(StoredFile).where(StoredFile.owner == owner, StoredFile.id == file_id, ~alive if expired else alive)
            path = session.scalar(query.returning(StoredFile.path))
            if path is None:
                return False
            stores = select(VectorStoreFile.vector_store_seq).where(
                VectorStoreFile.owner == owner, VectorStoreFile.file_id == file_id
            )
            session.execute(
                update(VectorStore)
                .where(VectorStore.seq.in_(stores))
                .values(generation=VectorStore.generation + 1)
                .execution_options(synchronize_session=False)
            )
            session.execute(delete(VectorStoreFile).where(VectorStoreFile.owner == owner, VectorStoreFile.file_id == file_id))
        (self.directory / path).unlink(missing_ok=True)
        return True

    def expire(self, now: int | None = None, batch: int = 500) -> int:
        """Delete the files past their ``expires_at`` (a batch of them); how many this call
        deleted (another replica may delete some of the same first: each goes once)."""
        query = select(StoredFile.owner, StoredFile.id).where(~live(now)).order_by(StoredFile.expires_at).limit(batch)
        with self._database.sessions() as session:
            due = list(session.execute(query))
        return sum(self.delete(owner, file_id, expired=True) for owner, file_id in due)

    def sweep_orphans(self) -> int:
        """Remove bytes with no row (a crash between the rename and the insert) and
        leftover partial writes that no live process is writing (it holds their lock);
        call at start-up. The number removed."""
        if not self.directory.is_dir():
            return 0
        with self._database.sessions() as session:
            known = set(session.scalars(select(StoredFile.path)))
        removed = 0
        for path in self.directory.glob("*/*"):
            relative = path.relative_to(self.directory).as_posix()
            partial = path.name.endswith(".partial")
            if not path.is_file() or not (partial or relative not in known):
                continue
            try:
                fd = os.open(path, os.O_RDWR)  # writable: NFS needs it for an exclusive lock
            except FileNotFoundError:
                continue  # renamed or removed meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # an upload in flight
            try:
                if partial or not self._has_row(relative):  # its writer may have committed meanwhile
                    path.unlink(missing_ok=True)
                    removed += 1
            finally:
                os.close(fd)
        return removed

    def _has_row(self, relative: str) -> bool:
        with self._database.sessions() as session:
            return session.scalar(select(StoredFile.seq).where(StoredFile.path == relative)) is not None


def _new_locked(path: Path):
    """A new file at ``path``, open for writing and locked (``flock``). A sweep may lock and
    remove it between the two steps: then it is made again."""
    while True:
        out = open(path, "xb")
        fcntl.flock(out.fileno(), fcntl.LOCK_EX)
        if os.fstat(out.fileno()).st_nlink:
            return out
        out.close()
