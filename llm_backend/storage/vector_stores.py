"""Vector stores, their files and file batches as the API shows them, per owner.

``vector_index.py`` holds what indexing writes and search reads (chunks, vectors); this
module the objects around them (file batches: ``vector_store_batches.py``; how their rows
are found, locked and shown: ``vector_store_rows.py``). Counts and sizes are never stored: a store's
``file_counts`` and ``usage_bytes`` and a batch's counts and status are computed from the
``vector_store_files`` rows in the query that reads them, so they are true after any
crash, cancel or delete. Every query is scoped to an owner (another owner's id reads as
an unknown one); ``expire`` (the expiry sweeper) and the indexing leases alone cross
owners: the files a process will index are leased to it (``leased_at``, renewed while it
holds them, ``renew_leases``), and a live process takes over those whose lease ran out
(``claim_lapsed``), as background responses are.

Expiry is final: a store is ``expired`` from the moment ``last_active_at`` +
``expires_after.days`` passes (nothing moves its ``last_active_at`` from then on, and the
API refuses to search or fill it); the sweeper (``serving/expiry.py``) then records that
moment in ``expires_at`` and drops its chunks, in one conditional transaction per store,
so replicas sweeping together expire each store once.
"""

from __future__ import annotations

import builtins
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from .dml import rows_changed
from .files import live
from .clock import database_now
from .models import StoredFile, VectorStore, VectorStoreChunk, VectorStoreFile
from .vector_store_rows import (
    Json,
    NewStoreFile,
    Order,
    counts_of,
    expiry,
    file_object,
    find_store,
    find_store_file,
    is_expired,
    new_file_row,
    rows_page,
    store_object,
    timestamp,
)

if TYPE_CHECKING:
    from .handle import DatabaseHandle

# Keys per lease renewal statement (a queue of a large batch renews in several).
LEASES_PER_STATEMENT = 500


class CursorNotFound(LookupError):
    """An ``after``/``before`` cursor names nothing of this owner here."""


@dataclass(frozen=True)
class Job:
    """One file to index: who, where, and what its bytes are."""

    owner: str
    vector_store_id: str
    file_id: str
    path: str  # relative to the files directory
    filename: str
    mime_type: str | None
    chunking_strategy: Json


class VectorStores:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    # --- stores -----------------------------------------------------------------------------

    def _shown(self, session: Session, stores: list[VectorStore]) -> list[Json]:
        seqs = [store.seq for store in stores]
        counts: dict[int, list[tuple[str, int]]] = {seq: [] for seq in seqs}
        usage: dict[int, int] = {seq: 0 for seq in seqs}
        if seqs:
            query = (
                select(VectorStoreFile.vector_store_seq, VectorStoreFile.status, func.count(), func.sum(VectorStoreFile.usage_bytes))
                .where(VectorStoreFile.vector_store_seq.in_(seqs))
                .group_by(VectorStoreFile.vector_store_seq, VectorStoreFile.status)
            )
            for seq, status, count, used in session.execute(query):
                counts[seq].append((status, count))
                usage[seq] += int(used or 0)
        now = timestamp()
        return [store_object(store, counts_of(counts[store.seq]), usage[store.seq], now) for store in stores]

    def missing_files(self, owner: str, file_ids: list[str]) -> list[str]:
        """The ids among ``file_ids`` that name no file of the owner."""
        with self._database.sessions() as session:
            query = select(StoredFile.id).where(StoredFile.owner == owner, StoredFile.id.in_(file_ids), live())
            found = set(session.scalars(query))
        return [file_id for file_id in dict.fromkeys(file_ids) if file_id not in found]

    def create(
        self,
        owner: str,
        name: str | None,
        metadata: Json,
        expires_after: Json | None,
        files: list[NewStoreFile],
        description: str | None = None,
    ) -> Json:
        """The store, with its files added ``in_progress``, in one transaction."""
        now = timestamp()
        store = VectorStore(
            id="vs_" + secrets.token_hex(12),
            owner=owner,
            name=name,
            description=description,
            created_at=now,
            last_active_at=now,
            metadata_=metadata,
            expires_after=expires_after,
            generation=0,
        )
        with self._database.sessions.begin() as session:
            session.add(store)
            session.flush()
            for new in {new.file_id: new for new in files}.values():
                session.add(new_file_row(store, owner, new, now))
            session.flush()
            return self._shown(session, [store])[0]

    def get(self, owner: str, store_id: str) -> Json | None:
        with self._database.sessions() as session:
            store = find_store(session, owner, store_id)
            return self._shown(session, [store])[0] if store else None

    def list(self, owner: str, limit: int, order: Order, after: str | None, before: str | None) -> tuple[list[Json], bool]:
        with self._database.sessions() as session:
            cursors: list[int | None] = []  # after's row's seq, then before's (None: not given)
            for cursor in (after, before):
                if cursor is None:
                    cursors.append(None)
                    continue
                store = find_store(session, owner, cursor)
                if store is None:
                    raise CursorNotFound(cursor)
                cursors.append(store.seq)
            query = select(VectorStore).where(VectorStore.owner == owner)
            rows, has_more = rows_page(session, query, VectorStore.seq, cursors[0], cursors[1], limit, order)
            return self._shown(session, [row[0] for row in rows]), has_more

    def update(self, owner: str, store_id: str, changes: Json) -> Json | None:
        """``changes``: any of ``name``, ``metadata``, ``expires_after`` (None clears it)."""
        with self._database.sessions.begin() as session:
            store = find_store(session, owner, store_id)
            if store is None:
                return None
            if "name" in changes:
                store.name = changes["name"]
            if "metadata" in changes:
                store.metadata_ = changes["metadata"]
            if "expires_after" in changes:
                store.expires_after = changes["expires_after"]
            if not is_expired(store):
                store.last_active_at = timestamp()
            session.flush()
            return self._shown(session, [store])[0]

    def touch(self, owner: str, store_ids: builtins.list[str]) -> None:
        """The stores were used (searched): their ``last_active_at`` (and expiry) moves on,
        unless they expired meanwhile (expiry is final)."""
        now = timestamp()
        with self._database.sessions.begin() as session:
            stores = session.scalars(select(VectorStore).where(VectorStore.owner == owner, VectorStore.id.in_(store_ids)))
            for store in stores:
                if not is_expired(store, now):
                    store.last_active_at = now

    def expired_ids(self, owner: str, store_ids: builtins.list[str]) -> builtins.list[str]:
        """The owner's stores among ``store_ids`` that have expired."""
        now = timestamp()
        with self._database.sessions() as session:
            stores = session.scalars(select(VectorStore).where(VectorStore.owner == owner, VectorStore.id.in_(store_ids)))
            return [store.id for store in stores if is_expired(store, now)]

    def expire(self, now: int | None = None) -> builtins.list[int]:
        """Record the expiry of every store past it and drop its chunks; the seqs of the
        stores this call expired."""
        now = now or timestamp()
        with self._database.sessions() as session:
            unmarked = session.scalars(select(VectorStore).where(VectorStore.expires_at.is_(None)))
            due = [(store.seq, expiry(store)) for store in unmarked if is_expired(store, now)]
        expired = []
        for seq, moment in due:
            with self._database.sessions.begin() as session:
                marked = rows_changed(
                    session,
                    update(VectorStore)
                    .where(VectorStore.seq == seq, VectorStore.expires_at.is_(None))
                    .values(expires_at=moment, generation=VectorStore.generation + 1)
                )
                if marked:
                    session.execute(delete(VectorStoreChunk).where(VectorStoreChunk.vector_store_seq == seq))
                    session.execute(update(VectorStoreFile).where(VectorStoreFile.vector_store_seq == seq).values(usage_bytes=0))
                    expired.append(seq)
        return expired

    # --- files of a store -------------------------------------------------------------------

    def add_file(self, owner: str, store_id: str, new: NewStoreFile) -> tuple[Json, bool] | None:
        """The file in the store ``in_progress`` (or as it already is there: the same file is
        not added twice), and whether it was added now; None if the store is not the owner's."""
        with self._database.sessions.begin() as session:
            store = find_store(session, owner, store_id, lock=True)
            if store is None:
                return None
            found = find_store_file(session, owner, store_id, new.file_id)
            if found is not None:
                return file_object(found[1], store_id), False
            row = new_file_row(store, owner, new, timestamp())
            session.add(row)
            store.last_active_at = timestamp()
            session.flush()
            return file_object(row, store_id), True

    def get_file(self, owner: str, store_id: str, file_id: str) -> Json | None:
        with self._database.sessions() as session:
            found = find_store_file(session, owner, store_id, file_id)
            return file_object(found[1], store_id) if found else None

    def list_files(
        self,
        owner: str,
        store_id: str,
        limit: int,
        order: Order,
        after: str | None,
        before: str | None,
        status: str | None = None,
        batch_id: str | None = None,
    ) -> tuple[builtins.list[Json], bool] | None:
        """A page of the store's files (of one batch, with one status); None if the store is
        not the owner's; ``CursorNotFound`` for a cursor that is not a file of the store."""
        with self._database.sessions() as session:
            store = find_store(session, owner, store_id)
            if store is None:
                return None
            cursors = []
            for cursor in (after, before):
                found = find_store_file(session, owner, store_id, cursor) if cursor is not None else None
                if cursor is not None and found is None:
                    raise CursorNotFound(cursor)
                cursors.append(found[1].seq if found else None)
            query = select(VectorStoreFile).where(VectorStoreFile.vector_store_seq == store.seq)
            if status is not None:
                query = query.where(VectorStoreFile.status == status)
            if batch_id is not None:
                query = query.where(VectorStoreFile.batch_id == batch_id)
            rows, has_more = rows_page(session, query, VectorStoreFile.seq, cursors[0], cursors[1], limit, order)
            return [file_object(row[0], store_id) for row in rows], has_more

    def job(self, owner: str, store_id: str, file_id: str) -> Job | None:
        """What indexing needs for a file still ``in_progress`` (None otherwise: removed,
        cancelled, or indexed already)."""
        with self._database.sessions() as session:
            found = find_store_file(session, owner, store_id, file_id)
            if found is None or found[1].status != "in_progress":
                return None
            stored = session.scalars(select(StoredFile).where(StoredFile.owner == owner, StoredFile.id == file_id)).one_or_none()
            if stored is None:
                return None
            return Job(owner, store_id, file_id, stored.path, stored.filename, stored.mime_type, found[1].chunking_strategy)

    def claim_lapsed(self, lease: float) -> builtins.list[tuple[str, str, str]]:
        """(owner, store id, file id) of the files ``in_progress`` whose lease was last
        renewed more than ``lease`` seconds ago by the database's clock (their process is
        gone), oldest first, now leased to
        the caller. One process takes each: PostgreSQL re-reads a row another claim changed
        meanwhile, and SQLite has one writer."""
        lapsed = or_(VectorStoreFile.leased_at.is_(None), VectorStoreFile.leased_at < database_now(-lease))
        with self._database.sessions.begin() as session:
            claimed = session.scalars(
                update(VectorStoreFile)
                .where(VectorStoreFile.status == "in_progress", lapsed)
                .values(leased_at=database_now())
                .returning(VectorStoreFile.seq)
                .execution_options(synchronize_session=False)
            ).all()
            if not claimed:
                return []
            query = (
                select(VectorStoreFile.owner, VectorStore.id, VectorStoreFile.file_id)
                .join(VectorStore, VectorStore.seq == VectorStoreFile.vector_store_seq)
                .where(VectorStoreFile.seq.in_(claimed))
                .order_by(VectorStoreFile.seq)
            )
            return [(owner, store_id, file_id) for owner, store_id, file_id in session.execute(query)]

    def renew_leases(self, keys: builtins.list[tuple[str, str, str]]) -> None:
        """Renew the lease of the files (owner, store id, file id) this process will index."""
        for start in range(0, len(keys), LEASES_PER_STATEMENT):
            held = (
                select(VectorStoreFile.seq)
                .join(VectorStore, VectorStore.seq == VectorStoreFile.vector_store_seq)
                .where(
                    tuple_(VectorStoreFile.owner, VectorStore.id, VectorStoreFile.file_id).in_(
                        keys[start : start + LEASES_PER_STATEMENT]
                    )
                )
            )
            with self._database.sessions.begin() as session:
                session.execute(
                    update(VectorStoreFile)
                    .where(VectorStoreFile.seq.in_(held), VectorStoreFile.status == "in_progress")
                    .values(leased_at=database_now())
                    .execution_options(synchronize_session=False)
                )