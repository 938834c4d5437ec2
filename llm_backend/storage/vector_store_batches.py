"""File batches of vector stores (migration 0006): a batch is its id, store and creation
time and whether it was cancelled; its ``file_counts`` and status are computed from its
store files (``batch_id``) in the query that reads it, so they cannot drift."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .dml import rows_changed
from .models import VectorStore, VectorStoreFile, VectorStoreFileBatch
from .vector_store_rows import (
    Json,
    NewStoreFile,
    counts_of,
    find_store,
    find_store_file,
    new_file_row,
    timestamp,
)

if TYPE_CHECKING:
    from .handle import DatabaseHandle


class VectorStoreBatches:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def _batch(self, session: Session, owner: str, store_id: str, batch_id: str) -> tuple[VectorStore, VectorStoreFileBatch] | None:
        query = (
            select(VectorStore, VectorStoreFileBatch)
            .join(VectorStoreFileBatch, VectorStore.seq == VectorStoreFileBatch.vector_store_seq)
            .where(VectorStore.owner == owner, VectorStore.id == store_id, VectorStoreFileBatch.id == batch_id)
        )
        found = session.execute(query).one_or_none()
        return (found[0], found[1]) if found else None

    def _batch_object(self, session: Session, store: VectorStore, batch: VectorStoreFileBatch) -> Json:
        rows = session.execute(
            select(VectorStoreFile.status, func.count())
            .where(VectorStoreFile.vector_store_seq == store.seq, VectorStoreFile.batch_id == batch.id)
            .group_by(VectorStoreFile.status)
        ).all()
        counts = counts_of([(status, count) for status, count in rows])
        if batch.cancelled:
            status = "cancelled"
        elif counts["in_progress"]:
            status = "in_progress"
        elif counts["total"] and counts["failed"] == counts["total"]:
            status = "failed"
        else:
            status = "completed"
        return {
            "id": batch.id,
            "object": "vector_store.files_batch",
            "created_at": batch.created_at,
            "vector_store_id": store.id,
            "status": status,
            "file_counts": counts,
        }

    def create_batch(self, owner: str, store_id: str, files: list[NewStoreFile]) -> tuple[Json, list[str]] | None:
        """The batch and its files ``in_progress`` in one transaction; a file already in the
        store joins the batch as it is. The batch and the ids of the files to index; None
        if the store is not the owner's."""
        now = timestamp()
        with self._database.sessions.begin() as session:
            store = find_store(session, owner, store_id, lock=True)
            if store is None:
                return None
            batch = VectorStoreFileBatch(id="vsfb_" + secrets.token_hex(12), vector_store_seq=store.seq, owner=owner, created_at=now, cancelled=False)
            session.add(batch)
            added = []
            for new in {new.file_id: new for new in files}.values():
                found = find_store_file(session, owner, store_id, new.file_id)
                if found is not None:
                    found[1].batch_id = batch.id
                    continue
                session.add(new_file_row(store, owner, new, now, batch.id))
                added.append(new.file_id)
            store.last_active_at = now
            session.flush()
            return self._batch_object(session, store, batch), added

    def get_batch(self, owner: str, store_id: str, batch_id: str) -> Json | None:
        with self._database.sessions() as session:
            found = self._batch(session, owner, store_id, batch_id)
            return self._batch_object(session, *found) if found else None

    def cancel_batch(self, owner: str, store_id: str, batch_id: str) -> Json | None:
        """The batch cancelled: its files not indexed yet become ``cancelled`` (indexing
        drops them; one being embedded is not saved). Both sides write on condition
        (``WHERE status = 'in_progress'``): of a cancel and the indexer's last write, on any
        replicas, the first to commit wins and the other changes nothing."""
        with self._database.sessions.begin() as session:
            found = self._batch(session, owner, store_id, batch_id)
            if found is None:
                return None
            store, batch = found
            # A batch with nothing left to index has finished: cancelling changes nothing.
            stopped = rows_changed(
                session,
                update(VectorStoreFile)
                .where(
                    VectorStoreFile.vector_store_seq == store.seq,
                    VectorStoreFile.batch_id == batch.id,
                    VectorStoreFile.status == "in_progress",
                )
                .values(status="cancelled")
                .execution_options(synchronize_session=False)
            )
            if stopped:
                batch.cancelled = True
            session.flush()
            return self._batch_object(session, store, batch)

