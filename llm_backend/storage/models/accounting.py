"""Usage accounting and the rate-limit counters replicas share (revisions 0003, 0006, 0013)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from ..storable import StoredText
from .base import SEQUENCE_TYPE, Base


class UsageRecord(Base):
    """Tokens used in one minute by one key on one model and operation family, as one
    process flushed them (storage/usage.py): several rows may share a minute (several
    flushes, several replicas); readers sum them."""

    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_operation_minute", "operation", "minute"),)

    seq: Mapped[int] = mapped_column(SEQUENCE_TYPE, primary_key=True, autoincrement=True)
    minute: Mapped[int] = mapped_column(BigInteger)  # Unix seconds of the minute's start
    operation: Mapped[str] = mapped_column(StoredText(32))  # completions | embeddings
    owner: Mapped[str] = mapped_column(StoredText(128))  # the key (alice, key-5d3c…, apikey_...): its id, never the key
    # The key's project (revision 0013; before it, usage had none).
    project_id: Mapped[str | None] = mapped_column(StoredText(128), default=None)
    model: Mapped[str] = mapped_column(StoredText(256, param="model"))
    requests: Mapped[int] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    # Revision 0016: what is not tokens - audio seconds transcribed, characters spoken,
    # hosted tool calls (file_search), bytes kept (vector stores, sampled hourly).
    seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    characters: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    calls: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

class RateLimitCounter(Base):
    """One key's count in one fixed window (requests or tokens), shared by every replica
    on this database (http/key_limits.py, storage/rate_counters.py)."""

    __tablename__ = "rate_limit_counters"

    owner: Mapped[str] = mapped_column(StoredText(128), primary_key=True)
    kind: Mapped[str] = mapped_column(StoredText(16), primary_key=True)  # requests | tokens | tokens_day
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds of its start
    count: Mapped[int] = mapped_column(BigInteger)
