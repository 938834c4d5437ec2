"""Batches and their lines; Uploads and their parts (revision 0012; a batch's creator: 0020)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base, utcnow


class StoredBatch(Base):
    """A batch: what it was created with, its status and timestamps, and the lease of the
    process running it. Its ``request_counts`` and ``usage`` are computed from its lines."""

    __tablename__ = "batches"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    # The key that created it (``Principal.key``; None: made before revision 0020): its
    # lines run only while that key is valid (serving/batches/runner.py).
    creator: Mapped[str | None] = mapped_column(StoredText(128), default=None)
    endpoint: Mapped[str] = mapped_column(StoredText(64))
    input_file_id: Mapped[str] = mapped_column(StoredText(param="input_file_id"))
    completion_window: Mapped[str] = mapped_column(StoredText(16))
    # validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled
    status: Mapped[str] = mapped_column(StoredText(16))
    model: Mapped[str | None] = mapped_column(StoredText(256), default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    output_expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    errors: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    output_file_id: Mapped[str | None] = mapped_column(StoredText(64), default=None)
    error_file_id: Mapped[str | None] = mapped_column(StoredText(64), default=None)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    in_progress_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    finalizing_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    failed_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    expired_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cancelling_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The process running it, until when (renewed while it runs; any process takes over a
    # batch whose lease ran out: its process died).
    lease_holder: Mapped[str | None] = mapped_column(StoredText(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_batches_owner_seq", "owner", "seq"), Index("ix_batches_status", "status"))

class BatchLine(Base):
    """One request of a batch's input file (``line``: its 0-based position), and once it
    was answered, its output line: written once, so no line is answered twice."""

    __tablename__ = "batch_lines"

    batch_seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, ForeignKey("batches.seq", ondelete="CASCADE"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    custom_id: Mapped[str] = mapped_column(StoredText())
    body: Mapped[dict[str, Any]]
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)  # its output goes to the error file
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_batch_lines_batch_done", "batch_seq", "done"),)

class StoredUpload(Base):
    """An Upload: what the client declared; its parts are ``UploadPart`` rows, their bytes
    files under the uploads directory; ``file_id`` once completed."""

    __tablename__ = "uploads"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    filename: Mapped[str] = mapped_column(StoredText(param="filename"))
    purpose: Mapped[str] = mapped_column(StoredText(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(StoredText(param="mime_type"))
    # pending, completing (one completion at a time; shown as pending), completed, cancelled,
    # expired (set by the sweep, under the row's lock: storage/uploads.py)
    status: Mapped[str] = mapped_column(StoredText(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    file_expires_after: Mapped[int | None] = mapped_column(BigInteger, default=None)  # seconds
    file_id: Mapped[str | None] = mapped_column(StoredText(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_uploads_status_expires_at", "status", "expires_at"),)

class UploadPart(Base):
    __tablename__ = "upload_parts"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    upload_seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, ForeignKey("uploads.seq", ondelete="CASCADE"))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_upload_parts_upload", "upload_seq"),)
