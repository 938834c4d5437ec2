"""Usage accounting, daily token budgets and rate-limit counters shared through the database.

``usage``: tokens per minute, key name, model and operation family, appended in batches
(storage/usage.py). ``api_keys.tpd``: a managed key's tokens per UTC day.
``rate_limit_counters``: fixed-window counters (one row per key, kind and window) that every
replica on one PostgreSQL updates with an atomic UPSERT (storage/rate_counters.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SEQUENCE_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("minute", sa.BigInteger, nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_operation_minute", "usage", ["operation", "minute"])
    op.create_table(
        "rate_limit_counters",
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("tpd", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("tpd")
    op.drop_table("rate_limit_counters")
    op.drop_index("ix_usage_operation_minute", table_name="usage")
    op.drop_table("usage")
