"""Responses, their kept events, conversations and MCP approval requests (revisions 0005, 0007, 0010, 0018)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import database_now
from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base, utcnow


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


class McpApprovalRequest(Base):
    """An ``mcp_approval_request`` this service issued (revision 0018): whose, and a digest
    of the call it asks about (server label, tool, arguments), answered at most once. Kept
    even for a response that is not stored: an approval that comes back with the items a
    client sends is honoured only if it matches one of these."""

    __tablename__ = "mcp_approval_requests"

    id: Mapped[str] = mapped_column(StoredText(64), primary_key=True)
    owner: Mapped[str] = mapped_column(StoredText(128))
    response_id: Mapped[str] = mapped_column(StoredText(64))
    call_sha256: Mapped[str] = mapped_column(StoredText(64))
    created_at: Mapped[datetime] = mapped_column(default=database_now())
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
