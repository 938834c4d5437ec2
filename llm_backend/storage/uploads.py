"""Uploads (migration 0012): an upload's row, its parts' rows, their bytes on disk.

A part's bytes are written under ``<uploads dir>/<upload id>/`` (temporary name, fsync,
rename) before its row is inserted, so a part with a row is always whole. Completing an
upload streams its parts, in the order the client gives, into a new File
(``storage/files.py``); one completion at a time (``completing``, taken by compare-and-set),
and a failed one stores nothing. The bytes of uploads that ended (completed, cancelled,
expired) are removed by ``sweep``.

Replicas share the rows and the directory, and any of them sweeps. The upload's row is the
lock: a part is kept (renamed into place, its row inserted) only in a transaction that
first updates the row on condition that it is alive (``pending``, not past ``expires_at``
by the database's clock: ``storage/clock.py``); a completion holds it ``completing``; the
sweep removes a folder only in a transaction that has re-checked its row, marking an
upload past its time ``expired`` by the same kind of conditional update. PostgreSQL's row
lock (SQLite's one writer) orders the two: either the part is kept and the upload stays,
or the upload ended first and the part is refused with the upload's state (OpenAI's 400),
never a part whose bytes vanished (a 500 at ``complete``, before).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import delete, func, select, update

from ..json.types import Json
from .clock import database_epoch, database_now
from .dml import rows_changed
from .models import StoredUpload, UploadPart

if TYPE_CHECKING:
    from .handle import DatabaseHandle
    from .files import FileStore

CHUNK = 1 << 20
# A completion that has held ``completing`` this long was cut off (its process died).
STALE_COMPLETION = timedelta(minutes=10)
ENDED = ("completed", "cancelled", "expired")


class UploadRefused(ValueError):
    """The operation cannot be done on this upload; ``reason`` says why (serving/uploads.py
    words it for the client). Nothing was stored."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


def shown_status(row: StoredUpload, now: int) -> str:
    if row.status == "completing":
        return "pending"
    if row.status == "pending" and now >= row.expires_at:
        return "expired"
    return row.status


def as_openai(row: StoredUpload, file: Json | None = None) -> Json:
    shown: Json = {
        "id": row.id,
        "object": "upload",
        "bytes": row.bytes,
        "created_at": row.created_at,
        "filename": row.filename,
        "purpose": row.purpose,
        "status": shown_status(row, int(time.time())),
        "expires_at": row.expires_at,
    }
    if file is not None:
        shown["file"] = file
    return shown


class UploadStore:
    def __init__(self, database: DatabaseHandle, directory: Path) -> None:
        self._database = database
        self.directory = Path(directory)

    def _find(self, session, owner: str, upload_id: str) -> StoredUpload | None:
        query = select(StoredUpload).where(StoredUpload.owner == owner, StoredUpload.id == upload_id)
        return session.scalars(query).one_or_none()

    @staticmethod
    def _usable(row: StoredUpload | None) -> StoredUpload:
        """The upload, if parts may still be added or it may be completed."""
        if row is None:
            raise UploadRefused("not_found")
        if row.status == "completing":
            raise UploadRefused("completing")
        status = shown_status(row, int(time.time()))
        if status != "pending":
            raise UploadRefused(status)
        return row

    def create(self, owner: str, filename: str, purpose: str, size: int, mime_type: str,
               file_expires_after: int | None, lifetime: int) -> Json:
        now = int(time.time())
        row = StoredUpload(
            id="upload_" + secrets.token_hex(12),
            owner=owner,
            filename=filename,
            purpose=purpose,
            bytes=size,
            mime_type=mime_type,
            status="pending",
            created_at=now,
            expires_at=now + lifetime,
            file_expires_after=file_expires_after,
        )
        with self._database.sessions.begin() as session:
            session.add(row)
        return as_openai(row)

    def get(self, owner: str, upload_id: str) -> StoredUpload | None:
        with self._database.sessions() as session:
            return self._find(session, owner, upload_id)

    def add_part(self, owner: str, upload_id: str, chunks: Iterable[bytes], max_part: int) -> Json:
        """Write a part (at most ``max_part`` bytes, and no more than the upload declared
        in all) and its row; the part object."""
        with self._database.sessions() as session:
            upload = self._usable(self._find(session, owner, upload_id))
        part_id = "part_" + secrets.token_hex(12)
        folder = self.directory / upload.id
        folder.mkdir(parents=True, exist_ok=True)
        partial, target = folder / f".{part_id}.partial", folder / part_id
        size = 0
        try:
            with open(partial, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_part:
                        raise UploadRefused("part_too_large", limit=max_part)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if not size:
                raise UploadRefused("empty_part")
            with self._database.sessions.begin() as session:
                # The lock (see the module docstring): alive now, and kept alive until commit.
                self._hold(session, owner, upload_id)
                stored = session.execute(select(func.coalesce(func.sum(UploadPart.bytes), 0)).where(UploadPart.upload_seq == upload.seq)).scalar_one()
                if stored + size > upload.bytes:
                    raise UploadRefused("too_many_bytes", declared=upload.bytes, stored=stored, size=size)
                os.replace(partial, target)
                now = int(time.time())
                session.add(UploadPart(id=part_id, upload_seq=upload.seq, bytes=size, created_at=now))
        except BaseException:
            partial.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            raise
        return {"id": part_id, "object": "upload.part", "created_at": now, "upload_id": upload.id}

    def _hold(self, session, owner: str, upload_id: str) -> None:
        """Lock the upload's row in this transaction if it is alive (``pending`` and not
        expired by the database's clock); else refuse with what it is."""
        held = rows_changed(
            session,
            update(StoredUpload)
            .where(StoredUpload.owner == owner, StoredUpload.id == upload_id, StoredUpload.status == "pending",
                   StoredUpload.expires_at > database_epoch())
            .values(updated_at=database_now())
            .execution_options(synchronize_session=False)
        )
        if not held:
            self._refuse(session, owner, upload_id)

    def _refuse(self, session, owner: str, upload_id: str) -> NoReturn:
        """Raise ``UploadRefused`` for an upload that is not alive, by what it is."""
        row = self._find(session, owner, upload_id)
        if row is None:
            raise UploadRefused("not_found")
        if row.status == "completing":
            raise UploadRefused("completing")
        raise UploadRefused(row.status if row.status in ENDED else "expired")

    def complete(self, owner: str, upload_id: str, part_ids: list[str], md5: str | None, files: FileStore) -> Json:
        """The upload as one File, its parts in the order of ``part_ids`` (each once, all
        of its bytes); checked before anything is stored: the parts, the byte count, the
        md5. The upload object with its ``file``.

        The upload is held ``completing`` from the start (the sweep keeps its bytes), and
        given back if anything is refused or fails."""
        with self._database.sessions() as session:
            upload = self._find(session, owner, upload_id)
        if upload is None:
            raise UploadRefused("not_found")
        if not self._take(upload.seq):
            with self._database.sessions() as session:
                self._refuse(session, owner, upload_id)
        created = None
        try:
            with self._database.sessions() as session:
                parts = dict(session.execute(select(UploadPart.id, UploadPart.bytes).where(UploadPart.upload_seq == upload.seq)).all())
            if len(set(part_ids)) != len(part_ids):
                raise UploadRefused("duplicate_part")
            missing = [part_id for part_id in part_ids if part_id not in parts]
            if missing:
                raise UploadRefused("unknown_part", part_id=missing[0])
            total = sum(parts[part_id] for part_id in part_ids)
            if total != upload.bytes:
                raise UploadRefused("byte_count", declared=upload.bytes, total=total)
            paths = [self.directory / upload.id / part_id for part_id in part_ids]
            if md5 is not None:
                digest = hashlib.md5(usedforsecurity=False)
                for chunk in _read(paths):
                    digest.update(chunk)
                if digest.hexdigest() != md5.lower():
                    raise UploadRefused("md5_mismatch")
            expires_at = None if upload.file_expires_after is None else int(time.time()) + upload.file_expires_after
            created = files.create(owner, upload.filename, upload.purpose, _read(paths), upload.mime_type,
                                   max_bytes=upload.bytes, expires_at=expires_at)
            with self._database.sessions.begin() as session:
                done = rows_changed(
                    session,
                    update(StoredUpload)
                    .where(StoredUpload.seq == upload.seq, StoredUpload.status == "completing")
                    .values(status="completed", file_id=created["id"])
                    .execution_options(synchronize_session=False)
                )
                if not done:  # given back as stale meanwhile (see ``sweep``)
                    self._refuse(session, owner, upload_id)
                session.execute(delete(UploadPart).where(UploadPart.upload_seq == upload.seq))
                shown = as_openai(session.get_one(StoredUpload, upload.seq), created)  # updated just above
        except BaseException:
            if created is not None:
                files.delete(owner, created["id"])
            self._give_back(upload.seq)
            raise
        shutil.rmtree(self.directory / upload.id, ignore_errors=True)
        return shown

    def _take(self, seq: int) -> bool:
        """The one completion of an upload: ``pending`` (and not expired) -> ``completing``."""
        with self._database.sessions.begin() as session:
            return bool(
                rows_changed(
                    session,
                    update(StoredUpload)
                    .where(StoredUpload.seq == seq, StoredUpload.status == "pending",
                           StoredUpload.expires_at > database_epoch())
                    .values(status="completing", updated_at=database_now())
                    .execution_options(synchronize_session=False)
                )
            )

    def _give_back(self, seq: int) -> None:
        with self._database.sessions.begin() as session:
            session.execute(
                update(StoredUpload)
                .where(StoredUpload.seq == seq, StoredUpload.status == "completing")
                .values(status="pending")
                .execution_options(synchronize_session=False)
            )

    def cancel(self, owner: str, upload_id: str) -> Json:
        """``pending`` -> ``cancelled`` by a conditional update: an upload being completed
        (or already ended) is refused, its bytes left to their holder."""
        with self._database.sessions.begin() as session:
            self._hold(session, owner, upload_id)
            upload = self._find(session, owner, upload_id)
            if upload is None:  # held just now in this transaction: there, but said rather than assumed
                raise UploadRefused("not_found")
            upload.status = "cancelled"
            session.execute(delete(UploadPart).where(UploadPart.upload_seq == upload.seq))
            shown = as_openai(upload)
        shutil.rmtree(self.directory / upload.id, ignore_errors=True)
        return shown

    def sweep(self) -> int:
        """Give back the uploads of completions whose process died long ago, and remove the
        bytes of uploads that ended (completed, cancelled, expired) or that have no row; the
        number of uploads whose bytes were removed. Each folder is judged by its row at the
        moment it is removed, in the transaction that holds the row (see the module
        docstring), never from an earlier list."""
        with self._database.sessions.begin() as session:
            session.execute(
                update(StoredUpload)
                .where(StoredUpload.status == "completing",
                       StoredUpload.updated_at < database_now(-STALE_COMPLETION.total_seconds()))
                .values(status="pending")
                .execution_options(synchronize_session=False)
            )
        if not self.directory.is_dir():
            return 0
        removed = 0
        for folder in self.directory.iterdir():
            if folder.is_dir() and self._remove_if_ended(folder):
                removed += 1
        return removed

    def _remove_if_ended(self, folder: Path) -> bool:
        with self._database.sessions.begin() as session:
            # Past its time: ``expired`` for good (a part or a completion taking the row now
            # waits for this transaction, then finds it expired).
            session.execute(
                update(StoredUpload)
                .where(StoredUpload.id == folder.name, StoredUpload.status == "pending",
                       StoredUpload.expires_at <= database_epoch())
                .values(status="expired", updated_at=database_now())
                .execution_options(synchronize_session=False)
            )
            status = session.scalar(select(StoredUpload.status).where(StoredUpload.id == folder.name).with_for_update())
            if status is not None and status not in ENDED:
                return False
            shutil.rmtree(folder, ignore_errors=True)
        return True


def _read(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                yield chunk
