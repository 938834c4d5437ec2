"""Vector stores' files and chunks: what indexing writes and search reads.

Every query is scoped to an owner. A file's chunks are written in one transaction together
with its ``completed`` status, so a crash while indexing leaves the file ``in_progress``
with no chunks (to be retried or failed), never half its chunks. Each change to a store's
chunks bumps its ``generation``, which keys the in-memory vector matrices of ``search``.

Keyword ranking runs in the database (``keyword_index.py``). Writers lock the store's row
before its files' (``vector_store_rows.locking_store``), the order a store's delete takes.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..json.types import Json
from . import keyword_index
from .dml import rows_changed
from .models import StoredFile, VectorStore, VectorStoreChunk, VectorStoreFile
from .vector_store_rows import locking_store

if TYPE_CHECKING:  # numpy is imported where it is used: the API process starts without it (issue #27)
    import numpy as np

    from .handle import DatabaseHandle

@dataclass(frozen=True)
class NewChunk:
    text: str
    n_tokens: int
    embedding: np.ndarray  # float32, L2-normalised


@dataclass(frozen=True)
class IndexedFile:
    """A completed file of a store, as search filters and results need it."""

    seq: int
    vector_store_id: str
    file_id: str
    filename: str
    attributes: Json


@dataclass(frozen=True)
class StoreVectors:
    generation: int
    chunk_seqs: np.ndarray  # int64
    file_seqs: np.ndarray  # int64, the vector store file of each chunk
    matrix: np.ndarray  # float32, one normalised row per chunk


def _now() -> int:
    return int(time.time())


class VectorIndex:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    # --- stores and their files -----------------------------------------------------------

    def create_store(self, owner: str, name: str | None = None, metadata: Json | None = None) -> str:
        store_id = "vs_" + secrets.token_hex(12)
        now = _now()
        with self._database.sessions.begin() as session:
            session.add(
                VectorStore(id=store_id, owner=owner, name=name, created_at=now, last_active_at=now, metadata_=metadata or {})
            )
        return store_id

    def _store(self, session: Session, owner: str, store_id: str) -> VectorStore | None:
        query = select(VectorStore).where(VectorStore.owner == owner, VectorStore.id == store_id)
        return session.scalars(locking_store(query)).one_or_none()

    def store_seqs(self, owner: str, store_ids: list[str]) -> dict[str, int]:
        """The owner's stores among ``store_ids`` (others are absent from the answer)."""
        query = select(VectorStore.id, VectorStore.seq).where(VectorStore.owner == owner, VectorStore.id.in_(store_ids))
        with self._database.sessions() as session:
            return {store_id: seq for store_id, seq in session.execute(query)}

    def add_file(
        self, owner: str, store_id: str, file_id: str, chunking_strategy: Json, attributes: Json | None = None
    ) -> bool:
        """The file enters the store ``in_progress``; False if the store is not the owner's."""
        with self._database.sessions.begin() as session:
            store = self._store(session, owner, store_id)
            if store is None:
                return False
            session.add(
                VectorStoreFile(
                    vector_store_seq=store.seq,
                    file_id=file_id,
                    owner=owner,
                    status="in_progress",
                    attributes=attributes or {},
                    chunking_strategy=chunking_strategy,
                    created_at=_now(),
                )
            )
        return True

    def _store_file(self, session: Session, owner: str, store_id: str, file_id: str, lock: bool = False) -> VectorStoreFile | None:
        """The file's row; with ``lock``, for a writer: the store's row locked first
        (``locking_store``)."""
        query = (
            select(VectorStoreFile)
            .join(VectorStore, VectorStore.seq == VectorStoreFile.vector_store_seq)
            .where(VectorStore.owner == owner, VectorStore.id == store_id, VectorStoreFile.file_id == file_id)
        )
        return session.scalars(locking_store(query) if lock else query).one_or_none()

    def save_chunks(
        self,
        owner: str,
        store_id: str,
        file_id: str,
        chunks: list[NewChunk],
        usage_bytes: int,
        only_in_progress: bool = False,
    ) -> bool:
        """The file's chunks replace any it had, and it is ``completed``, in one transaction.
        With ``only_in_progress``, nothing is written unless the file is still
        ``in_progress`` (a batch cancelled meanwhile). False too when the store or the file
        is deleted while this runs: the delete wins."""
        try:
            return self._save_chunks(owner, store_id, file_id, chunks, usage_bytes, only_in_progress)
        except IntegrityError:
            # Deleted between the read and the writes (found by fuzzing: deleteVectorStore
            # during indexing); nothing of this transaction is kept.
            return False

    def _save_chunks(
        self, owner: str, store_id: str, file_id: str, chunks: list[NewChunk], usage_bytes: int, only_in_progress: bool
    ) -> bool:
        import numpy as np

        with self._database.sessions.begin() as session:
            row = self._store_file(session, owner, store_id, file_id, lock=True)
            if row is None or not self._set_status(session, row.seq, only_in_progress, "completed", usage_bytes, None):
                return False
            session.execute(delete(VectorStoreChunk).where(VectorStoreChunk.vector_store_file_seq == row.seq))
            session.add_all(
                VectorStoreChunk(
                    vector_store_seq=row.vector_store_seq,
                    vector_store_file_seq=row.seq,
                    file_id=file_id,
                    position=position,
                    text=chunk.text,
                    n_tokens=chunk.n_tokens,
                    embedding=np.asarray(chunk.embedding, dtype=np.float32).tobytes(),
                )
                for position, chunk in enumerate(chunks)
            )
            self._bump(session, row.vector_store_seq)
        return True

    def mark_failed(
        self, owner: str, store_id: str, file_id: str, code: str, message: str, only_in_progress: bool = False
    ) -> bool:
        with self._database.sessions.begin() as session:
            row = self._store_file(session, owner, store_id, file_id, lock=True)
            error = {"code": code, "message": message}
            if row is None or not self._set_status(session, row.seq, only_in_progress, "failed", 0, error):
                return False
            session.execute(delete(VectorStoreChunk).where(VectorStoreChunk.vector_store_file_seq == row.seq))
            self._bump(session, row.vector_store_seq)
        return True

    @staticmethod
    def _set_status(session: Session, seq: int, only_in_progress: bool, status: str, usage_bytes: int, error: Json | None) -> bool:
        """The file's final status, first thing in the transaction. With ``only_in_progress``
        a conditional update (``WHERE status = 'in_progress'``), not a write of what was
        read: a batch cancel committed since the read (another replica's) stays cancelled;
        PostgreSQL re-checks the condition once the cancel's row lock is gone."""
        query = update(VectorStoreFile).where(VectorStoreFile.seq == seq)
        if only_in_progress:
            query = query.where(VectorStoreFile.status == "in_progress")
        values = {"status": status, "usage_bytes": usage_bytes, "last_error": error}
        return bool(rows_changed(session, query.values(**values).execution_options(synchronize_session=False)))

    def file_status(self, owner: str, store_id: str, file_id: str) -> Json | None:
        with self._database.sessions() as session:
            row = self._store_file(session, owner, store_id, file_id)
            if row is None:
                return None
            return {"status": row.status, "usage_bytes": row.usage_bytes, "last_error": row.last_error}

    def remove_file(self, owner: str, store_id: str, file_id: str) -> bool:
        """The file leaves the store, with its chunks."""
        with self._database.sessions.begin() as session:
            row = self._store_file(session, owner, store_id, file_id, lock=True)
            if row is None:
                return False
            session.delete(row)
            self._bump(session, row.vector_store_seq)
        return True

    def update_attributes(self, owner: str, store_id: str, file_id: str, attributes: Json) -> bool:
        with self._database.sessions.begin() as session:
            row = self._store_file(session, owner, store_id, file_id, lock=True)
            if row is None:
                return False
            row.attributes = dict(attributes)
            self._bump(session, row.vector_store_seq)  # search caches files with their attributes
        return True

    def delete_store(self, owner: str, store_id: str) -> int | None:
        """The deleted store's seq (the key of search's caches); None if it was not the owner's."""
        with self._database.sessions.begin() as session:
            query = delete(VectorStore).where(VectorStore.owner == owner, VectorStore.id == store_id).returning(VectorStore.seq)
            return session.scalar(query)

    def _bump(self, session: Session, store_seq: int) -> None:
        session.execute(
            update(VectorStore)
            .where(VectorStore.seq == store_seq)
            .values(generation=VectorStore.generation + 1, last_active_at=_now())
        )

    # --- what search reads ----------------------------------------------------------------

    def indexed_files(self, store_seqs: list[int]) -> list[IndexedFile]:
        """The completed files of the stores, with the filename when the file is known."""
        query = (
            select(VectorStoreFile, VectorStore.id, StoredFile.filename)
            .join(VectorStore, VectorStore.seq == VectorStoreFile.vector_store_seq)
            .outerjoin(StoredFile, StoredFile.id == VectorStoreFile.file_id)
            .where(VectorStoreFile.vector_store_seq.in_(store_seqs), VectorStoreFile.status == "completed")
        )
        with self._database.sessions() as session:
            return [
                IndexedFile(row.seq, store_id, row.file_id, filename or row.file_id, row.attributes or {})
                for row, store_id, filename in session.execute(query)
            ]

    def generations(self, store_seqs: list[int]) -> dict[int, int]:
        """Each store's generation, in the order given."""
        query = select(VectorStore.seq, VectorStore.generation).where(VectorStore.seq.in_(store_seqs))
        with self._database.sessions() as session:
            found = dict(session.execute(query).all())
        return {seq: found.get(seq, 0) for seq in store_seqs}

    def vectors(self, store_seq: int) -> StoreVectors:
        """Every chunk vector of a store, as one matrix, read with its generation in one
        transaction (so the two agree)."""
        import numpy as np

        query = select(VectorStoreChunk.seq, VectorStoreChunk.vector_store_file_seq, VectorStoreChunk.embedding).where(
            VectorStoreChunk.vector_store_seq == store_seq
        )
        with self._database.sessions.begin() as session:
            generation = session.scalar(select(VectorStore.generation).where(VectorStore.seq == store_seq)) or 0
            rows = session.execute(query).all()
        if not rows:
            return StoreVectors(generation, np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 0), np.float32))
        matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32).reshape(len(rows), -1)
        seqs = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        file_seqs = np.fromiter((row[1] for row in rows), np.int64, len(rows))
        return StoreVectors(generation, seqs, file_seqs, matrix)

    def keyword_ranking(self, store_seqs: list[int], file_seqs: list[int], query: str, limit: int) -> list[tuple[int, float]]:
        """Chunk seqs of the given files that match any word of ``query``, best first, with
        the database's relevance score (higher is better)."""
        words = keyword_index.query_words(query)
        if not words or not file_seqs:
            return []
        rank = keyword_index.bm25 if self._database.dialect == "sqlite" else keyword_index.idf_ts_rank
        with self._database.sessions() as session:
            return rank(session, store_seqs, file_seqs, words, limit)

    def chunk_texts(self, chunk_seqs: list[int]) -> dict[int, tuple[int, str]]:
        """seq ⇒ (vector store file seq, text)."""
        if not chunk_seqs:
            return {}
        query = select(VectorStoreChunk.seq, VectorStoreChunk.vector_store_file_seq, VectorStoreChunk.text).where(
            VectorStoreChunk.seq.in_(chunk_seqs)
        )
        with self._database.sessions() as session:
            return {seq: (file_seq, chunk) for seq, file_seq, chunk in session.execute(query)}
