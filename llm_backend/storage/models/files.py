"""Files and vector stores: their files, file batches and chunks (revisions 0004, 0006, 0011)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import database_now
from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base


class StoredFile(Base):
    """An uploaded file's metadata; its bytes are a file under the files directory."""

    __tablename__ = "files"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    filename: Mapped[str] = mapped_column(StoredText(512, param="file"))
    purpose: Mapped[str] = mapped_column(StoredText(32, param="purpose"))
    bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str | None] = mapped_column(StoredText(128, param="file"), default=None)
    sha256: Mapped[str] = mapped_column(StoredText(64))
    # Relative to the files directory: the directory may move (a volume), rows need not.
    path: Mapped[str] = mapped_column(StoredText(512))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (Index("ix_files_owner_seq", "owner", "seq"),)

class VectorStore(Base):
    __tablename__ = "vector_stores"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    name: Mapped[str | None] = mapped_column(StoredText(256, param="name"), default=None)
    # Added in revision 0011.
    description: Mapped[str | None] = mapped_column(StoredText(512, param="description"), default=None)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_active_at: Mapped[int] = mapped_column(BigInteger)
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # Bumped whenever the store's chunks change: the key of in-memory vector matrices.
    generation: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_vector_stores_owner_seq", "owner", "seq"),)

class VectorStoreFile(Base):
    """A file in a vector store: its indexing status, attributes and chunking."""

    __tablename__ = "vector_store_files"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    vector_store_seq: Mapped[int] = mapped_column(
        SEQUENCE_TYPE, ForeignKey("vector_stores.seq", ondelete="CASCADE")
    )
    file_id: Mapped[str] = mapped_column(StoredText(64, param="file_id"))
    owner: Mapped[str] = mapped_column(StoredText(128))
    status: Mapped[str] = mapped_column(StoredText(16), default="in_progress")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chunking_strategy: Mapped[dict[str, Any]] = mapped_column(JSON)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # The file batch that added it, if any (revision 0006).
    batch_id: Mapped[str | None] = mapped_column(StoredText(64), default=None)
    # While ``in_progress``: when the process that will index it last renewed its claim
    # (revision 0010); a live process takes over a file whose lease ran out.
    leased_at: Mapped[datetime | None] = mapped_column(default=database_now())  # the database's clock

    __table_args__ = (
        UniqueConstraint("vector_store_seq", "file_id", name="uq_vector_store_files_store_file"),
        Index("ix_vector_store_files_file_id", "file_id"),
        Index("ix_vector_store_files_batch_id", "batch_id"),
        Index("ix_vector_store_files_status", "status"),
    )

class VectorStoreFileBatch(Base):
    """A file batch (revision 0006): its counts and status are computed from its files."""

    __tablename__ = "vector_store_file_batches"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    vector_store_seq: Mapped[int] = mapped_column(
        SEQUENCE_TYPE, ForeignKey("vector_stores.seq", ondelete="CASCADE")
    )
    owner: Mapped[str] = mapped_column(StoredText(128))
    created_at: Mapped[int] = mapped_column(BigInteger)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)

class VectorStoreChunk(Base):
    """One chunk of a file in a vector store, with its embedding (float32 bytes, L2-normalised).
    Keyword search uses a full-text index beside it that the migration creates per dialect
    (SQLite FTS5 table, PostgreSQL tsvector column), so it is not mapped here."""

    __tablename__ = "vector_store_chunks"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    vector_store_seq: Mapped[int] = mapped_column(
        SEQUENCE_TYPE, ForeignKey("vector_stores.seq", ondelete="CASCADE")
    )
    vector_store_file_seq: Mapped[int] = mapped_column(
        SEQUENCE_TYPE, ForeignKey("vector_store_files.seq", ondelete="CASCADE")
    )
    file_id: Mapped[str] = mapped_column(StoredText(64))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(StoredText())
    n_tokens: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_vector_store_chunks_store", "vector_store_seq"),
        Index("ix_vector_store_chunks_file", "vector_store_file_seq", "position"),
    )
