"""The tables, as SQLAlchemy 2.x typed ORM classes. The schema itself is owned by the
migrations (``migrations/versions``); these classes describe the head revision."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import true

from .clock import database_now
from .storable import StoredText

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
SEQUENCE_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class StoredChatCompletion(Base):
    """One chat completion as it was answered, with the request that produced it."""

    __tablename__ = "chat_completions"

    # Insertion order: the stable sort key and pagination cursor (``created`` has 1 s steps).
    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    model: Mapped[str] = mapped_column(StoredText(256, param="model"))
    created: Mapped[int] = mapped_column(BigInteger)
    request: Mapped[dict[str, Any]]
    response: Mapped[dict[str, Any]]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Added in revision 0002.
    status: Mapped[str] = mapped_column(StoredText(16), default="completed", server_default="completed")
    # False: kept only for audit (the client did not ask for ``store``); the API never shows it.
    store: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    metadata_pairs: Mapped[list["ChatCompletionMetadata"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (Index("ix_chat_completions_owner_store_seq", "owner", "store", "seq"),)

    def set_metadata(self, metadata: dict[str, str]) -> None:
        """The metadata, both as shown (JSON) and as filtered on (one row per pair)."""
        self.metadata_ = dict(metadata)
        self.metadata_pairs = [ChatCompletionMetadata(key=key, value=value) for key, value in metadata.items()]


class ChatCompletionMetadata(Base):
    """One metadata pair of a stored chat completion, for exact ``metadata[key]=value``
    filters on any key (JSON path functions differ per database and mangle odd keys)."""

    __tablename__ = "chat_completion_metadata"

    seq: Mapped[int] = mapped_column(
        SEQUENCE_TYPE, ForeignKey("chat_completions.seq", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(StoredText(64, param="metadata"), primary_key=True)
    value: Mapped[str] = mapped_column(StoredText(512, param="metadata"))

    __table_args__ = (Index("ix_chat_completion_metadata_key_value", "key", "value"),)


class ApiKey(Base):
    """A managed API key. Only the sha256 digest of the key is kept, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(StoredText(64), primary_key=True)
    digest: Mapped[str] = mapped_column(StoredText(64), unique=True)
    name: Mapped[str] = mapped_column(StoredText(256, param="name"))
    description: Mapped[str] = mapped_column(StoredText(param="description"), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Requests and tokens per minute (None: unlimited); http/rate_limits.py enforces them.
    rpm: Mapped[int | None] = mapped_column(default=None)
    tpm: Mapped[int | None] = mapped_column(default=None)
    # Tokens per UTC day (None: unlimited); revision 0006.
    tpd: Mapped[int | None] = mapped_column(default=None)


# --- Usage accounting and shared rate-limit counters (revision 0006) ----------------------


class UsageRecord(Base):
    """Tokens used in one minute by one key on one model and operation family, as one
    process flushed them (storage/usage.py): several rows may share a minute (several
    flushes, several replicas); readers sum them."""

    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_operation_minute", "operation", "minute"),)

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    minute: Mapped[int] = mapped_column(BigInteger)  # Unix seconds of the minute's start
    operation: Mapped[str] = mapped_column(StoredText(32))  # completions | embeddings
    owner: Mapped[str] = mapped_column(StoredText(128))  # the key's tenant (alice, key-5d3c…, apikey_...), never the key
    model: Mapped[str] = mapped_column(StoredText(256, param="model"))
    requests: Mapped[int] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)


class RateLimitCounter(Base):
    """One key's count in one fixed window (requests or tokens), shared by every replica
    on this database (http/rate_limits.py, storage/rate_counters.py)."""

    __tablename__ = "rate_limit_counters"

    owner: Mapped[str] = mapped_column(StoredText(128), primary_key=True)
    kind: Mapped[str] = mapped_column(StoredText(16), primary_key=True)  # requests | tokens | tokens_day
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds of its start
    count: Mapped[int] = mapped_column(BigInteger)


# --- Responses and conversations (revision 0005) ---------------------------------------


class StoredResponse(Base):
    """One Responses API response: the object as last shown, the request that made it, and
    its input items (with ids), so a ``previous_response_id`` chain can be rebuilt."""

    __tablename__ = "responses"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    model: Mapped[str] = mapped_column(StoredText(256, param="model"))
    # queued, in_progress, completed, incomplete, failed, cancelled (as the object says).
    status: Mapped[str] = mapped_column(StoredText(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    response: Mapped[dict[str, Any]]
    request: Mapped[dict[str, Any]]
    input_items: Mapped[list[Any]] = mapped_column(JSON)
    previous_response_id: Mapped[str | None] = mapped_column(StoredText(64, param="previous_response_id"), default=None)
    conversation_id: Mapped[str | None] = mapped_column(StoredText(64, param="conversation"), default=None)
    background: Mapped[bool] = mapped_column(Boolean, default=False)
    # A background response's lease: the database's clock, as every replica reads it.
    updated_at: Mapped[datetime] = mapped_column(default=database_now(), onupdate=database_now())

    # The start-up sweep finds unfinished background responses by status.
    __table_args__ = (Index("ix_responses_status", "status"),)


class ResponseEvent(Base):
    """One stream event of a background response (revision 0010), written while it runs,
    so that any replica streams it again (``GET /v1/responses/{id}?stream=true``)."""

    __tablename__ = "response_events"

    response_id: Mapped[str] = mapped_column(
        StoredText(64), ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    sequence_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[dict[str, Any]]


class StoredConversation(Base):
    """A Conversation: its metadata; its items are ``ConversationItem`` rows, in order."""

    __tablename__ = "conversations"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    created_at: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConversationItem(Base):
    """One item of a conversation (a message, a function call or its output, ...).
    ``seq`` is the order; ``id`` is the item's own id, unique within its conversation."""

    __tablename__ = "conversation_items"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    conversation_seq: Mapped[int] = mapped_column(
        SEQUENCE_TYPE, ForeignKey("conversations.seq", ondelete="CASCADE")
    )
    id: Mapped[str] = mapped_column(StoredText(64))
    item: Mapped[dict[str, Any]]

    __table_args__ = (
        Index("ix_conversation_items_conversation_id", "conversation_seq", "id", unique=True),
        Index("ix_conversation_items_conversation_seq", "conversation_seq", "seq"),
    )


# --- Files and vector stores (revision 0004) ---------------------------------------------


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


# --- Tenancy (revision 0009) -------------------------------------------------------------


class ForwardedObject(Base):
    """An object an upstream keeps (a file, batch, vector store... created through a
    forwarded request), and the key that owns it here: only that key reaches it through
    this service (serving/ownership.py). Ids are the upstream's, never rewritten."""

    __tablename__ = "forwarded_objects"

    id: Mapped[str] = mapped_column(StoredText(256), primary_key=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    kind: Mapped[str] = mapped_column(StoredText(64))  # the object's ``object`` ("file", "batch"), or the field naming it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OwnerRename(Base):
    """One positional owner of a static key (``key-0``, ``admin-1``) carried over to the
    same key's owner today, when revision 0009 was applied: the record that it was done."""

    __tablename__ = "owner_renames"

    old_owner: Mapped[str] = mapped_column(StoredText(128), primary_key=True)
    new_owner: Mapped[str] = mapped_column(StoredText(128))
    rows: Mapped[int] = mapped_column(BigInteger)  # rows renamed, over every table
    renamed_at: Mapped[datetime] = mapped_column(default=utcnow)
# --- Batches and uploads (revision 0012) ---------------------------------------------------


class StoredBatch(Base):
    """A batch: what it was created with, its status and timestamps, and the lease of the
    process running it. Its ``request_counts`` and ``usage`` are computed from its lines."""

    __tablename__ = "batches"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
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


# --- MCP approval requests (revision 0013) ------------------------------------------------


class McpApprovalRequest(Base):
    """An ``mcp_approval_request`` this service issued: whose, and a digest of the call it
    asks about (server label, tool, arguments), answered at most once. Kept even for a
    response that is not stored: an approval that comes back with the items a client sends
    is honoured only if it matches one of these."""

    __tablename__ = "mcp_approval_requests"

    id: Mapped[str] = mapped_column(StoredText(64), primary_key=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    response_id: Mapped[str] = mapped_column(StoredText(64))
    call_sha256: Mapped[str] = mapped_column(StoredText(64))
    created_at: Mapped[datetime] = mapped_column(default=database_now())
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
