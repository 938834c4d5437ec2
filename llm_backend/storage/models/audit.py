"""The audit log (revision 0014): one row per change to the control plane, written once.
Triggers of the migration refuse every UPDATE, DELETE and TRUNCATE of it, whoever asks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base


class AuditLogEntry(Base):
    """An event as OpenAI's audit log shows it: ``type``, when, the project it is scoped to,
    the actor (an admin key's id, never the key) and the type's details."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    type: Mapped[str] = mapped_column(StoredText(64))
    effective_at: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[str | None] = mapped_column(StoredText(128), default=None)
    project_name: Mapped[str | None] = mapped_column(StoredText(256), default=None)
    actor_id: Mapped[str | None] = mapped_column(StoredText(128), default=None)  # the key's id (actor_ids[])
    actor: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    resource_id: Mapped[str | None] = mapped_column(StoredText(256), default=None)  # resource_ids[]
    details: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_effective_at", "effective_at"), Index("ix_audit_log_type", "type"))
