"""How vector stores' rows are found, locked and shown as the API's objects: the helpers
``vector_stores.py`` (stores and their files), ``vector_store_batches.py`` and
``vector_index.py`` share, apart from the stores' operations themselves."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..json.types import Json
from .models import VectorStore, VectorStoreFile

Order = Literal["asc", "desc"]
STATUSES = ("in_progress", "completed", "failed", "cancelled")
DAY = 86400


@dataclass(frozen=True)
class NewStoreFile:
    file_id: str
    attributes: Json
    chunking_strategy: Json


def timestamp() -> int:
    return int(time.time())


def locking_store(query: Select) -> Select:
    """``query`` (of a store, or of its files joined with it) locking the store's row, for a
    transaction that will write the store's files, chunks or batches. A store's delete locks
    its row, then its files' (the cascade); a writer that locked a file first and the store
    later (a chunk's foreign key, the store's ``generation``) deadlocked with it on
    PostgreSQL, which aborted the delete: a 500 (the fuzz, seed 2067783929). So every
    writer takes the store's row first. ``FOR NO KEY UPDATE``: what its own later update of
    the store takes anyway (no upgrade to wait for), and it leaves foreign keys to other
    rows alone. SQLite has one writer and no row locks: nothing is added there."""
    return query.with_for_update(of=VectorStore, key_share=True)  # PostgreSQL: FOR NO KEY UPDATE


def find_store(session: Session, owner: str, store_id: str, lock: bool = False) -> VectorStore | None:
    """The owner's store; with ``lock``, its row locked (``locking_store``)."""
    query = select(VectorStore).where(VectorStore.owner == owner, VectorStore.id == store_id)
    return session.scalars(locking_store(query) if lock else query).one_or_none()


def find_store_file(session: Session, owner: str, store_id: str, file_id: str) -> tuple[VectorStore, VectorStoreFile] | None:
    query = (
        select(VectorStore, VectorStoreFile)
        .join(VectorStoreFile, VectorStore.seq == VectorStoreFile.vector_store_seq)
        .where(VectorStore.owner == owner, VectorStore.id == store_id, VectorStoreFile.file_id == file_id)
    )
    found = session.execute(query).one_or_none()
    return (found[0], found[1]) if found else None


def new_file_row(store: VectorStore, owner: str, new: NewStoreFile, now: int, batch_id: str | None = None) -> VectorStoreFile:
    """A store file ``in_progress`` (the indexer finishes it)."""
    return VectorStoreFile(
        vector_store_seq=store.seq,
        file_id=new.file_id,
        owner=owner,
        status="in_progress",
        attributes=new.attributes,
        chunking_strategy=new.chunking_strategy,
        usage_bytes=0,
        created_at=now,
        batch_id=batch_id,
    )


def counts_of(rows: list[tuple[str, int]]) -> Json:
    counts = {status: 0 for status in STATUSES}
    for status, count in rows:
        counts[status] = counts.get(status, 0) + count
    counts["total"] = sum(counts[status] for status in STATUSES)
    return counts


def expiry(row: VectorStore) -> int | None:
    """When the store expires (or did: the sweeper's record), None if it never does."""
    if row.expires_at is not None:
        return row.expires_at
    return row.last_active_at + row.expires_after["days"] * DAY if row.expires_after else None


def is_expired(row: VectorStore, now: int | None = None) -> bool:
    expires_at = expiry(row)
    return expires_at is not None and expires_at <= (now or timestamp())


def store_object(row: VectorStore, counts: Json, usage_bytes: int, now: int | None = None) -> Json:
    now = now or timestamp()
    expires_at = expiry(row)
    if is_expired(row, now):
        status = "expired"
    else:
        status = "in_progress" if counts["in_progress"] else "completed"
    shown: Json = {
        "id": row.id,
        "object": "vector_store",
        "created_at": row.created_at,
        "name": row.name or "",
        "usage_bytes": usage_bytes,
        "file_counts": counts,
        "status": status,
        "expires_at": expires_at,
        "last_active_at": row.last_active_at,
        "metadata": row.metadata_ or {},
    }
    if row.expires_after:
        shown["expires_after"] = row.expires_after
    if row.description is not None:
        shown["description"] = row.description
    return shown


def file_object(row: VectorStoreFile, store_id: str) -> Json:
    return {
        "id": row.file_id,
        "object": "vector_store.file",
        "usage_bytes": row.usage_bytes,
        "created_at": row.created_at,
        "vector_store_id": store_id,
        "status": row.status,
        "last_error": row.last_error,
        "chunking_strategy": row.chunking_strategy,
        "attributes": row.attributes or {},
    }


def rows_page(session: Session, query: Select, seq_column: Any, cursor: int | None, before: int | None, limit: int, order: Order) -> tuple[list[Any], bool]:
    """Rows of ``query`` in ``order`` after ``cursor`` (or the ``limit`` just before
    ``before``), and whether more follow in that direction."""
    descending = order == "desc"
    if before is not None:
        query = query.where(seq_column > before if descending else seq_column < before)
        rows = list(session.execute(query.order_by(seq_column.asc() if descending else seq_column.desc()).limit(limit + 1)))
        return list(reversed(rows[:limit])), len(rows) > limit
    if cursor is not None:
        query = query.where(seq_column < cursor if descending else seq_column > cursor)
    rows = list(session.execute(query.order_by(seq_column.desc() if descending else seq_column.asc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
