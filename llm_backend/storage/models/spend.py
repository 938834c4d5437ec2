"""Hard spend limits and spend alerts (revision 0016): the organisation's (``scope`` "") and
each project's. What was spent is counted in ``rate_limit_counters`` (kind ``spend``, a
month's window, micro-dollars); an alert fires once per threshold and month (a claim there too)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base


class SpendLimit(Base):
    __tablename__ = "spend_limits"

    scope: Mapped[str] = mapped_column(StoredText(128), primary_key=True)  # "" or a project id
    threshold_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(StoredText(8), default="USD")
    interval: Mapped[str] = mapped_column(StoredText(16), default="month")


class SpendAlert(Base):
    __tablename__ = "spend_alerts"

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(StoredText(64), unique=True)
    scope: Mapped[str] = mapped_column(StoredText(128))  # "" or a project id
    threshold_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(StoredText(8), default="USD")
    interval: Mapped[str] = mapped_column(StoredText(16), default="month")
    notification_channel: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_spend_alerts_scope_seq", "scope", "seq"),)
