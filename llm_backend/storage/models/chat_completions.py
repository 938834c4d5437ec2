"""Stored chat completions and their metadata pairs (revisions 0001, 0002)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import true

from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base, utcnow


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
