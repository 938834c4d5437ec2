"""The audit log (revision 0014): one row per change to the control plane, written once.
Triggers of the migrations refuse every UPDATE, DELETE and TRUNCATE of it (and on SQLite an
INSERT OR REPLACE over an entry: 0019, on any of its unique columns: 0021); each entry is sealed into a keyed chain
(``storage/audit_chain.py``), which shows what a table owner changes around the triggers."""

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
    # Its place in the chain and its seal (audit_chain.py); None only where the chain was forged.
    chain_index: Mapped[int | None] = mapped_column(BigInteger, default=None)
    chain: Mapped[str | None] = mapped_column(StoredText(64), default=None)

    __table_args__ = (
        Index("ix_audit_log_effective_at", "effective_at"), Index("ix_audit_log_type", "type"),
        Index("ux_audit_log_chain_index", "chain_index", unique=True),  # two entries never seal to one head
    )
