"""Managed API keys: a project's (its service accounts') and the organisation's admin keys
(revisions 0001, 0003, 0006, 0013)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import Base, utcnow


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
    # Requests and tokens per minute (None: unlimited); http/key_limits.py enforces them.
    rpm: Mapped[int | None] = mapped_column(default=None)
    tpm: Mapped[int | None] = mapped_column(default=None)
    # Tokens per UTC day (None: unlimited); revision 0006.
    tpd: Mapped[int | None] = mapped_column(default=None)
    # Revision 0013. The project whose objects the key reaches (None: an admin key).
    project_id: Mapped[str | None] = mapped_column(StoredText(128), default=None)
    service_account_id: Mapped[str | None] = mapped_column(StoredText(64), default=None)
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # The key's first and last characters, as OpenAI shows a key (``sk-llmb-abc…wxyz``).
    redacted_value: Mapped[str] = mapped_column(StoredText(64), default="sk-llmb-…", server_default="sk-llmb-…")

    __table_args__ = (Index("ix_api_keys_project", "project_id"),)
