"""Spend: hard limits and alerts; usage of what is not tokens.

``spend_limits`` (the organisation's, scope "", and each project's), ``spend_alerts``;
``usage`` gains ``seconds`` (audio transcribed), ``characters`` (spoken), ``calls`` (hosted
tool calls) and ``bytes`` (vector stores kept, sampled hourly), so that costs are whole.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SEQUENCE_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
QUANTITIES = (("seconds", sa.Float), ("characters", sa.BigInteger), ("calls", sa.BigInteger), ("bytes", sa.BigInteger))


def upgrade() -> None:
    op.create_table(
        "spend_limits",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("threshold_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("interval", sa.String(16), nullable=False),
    )
    op.create_table(
        "spend_alerts",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("threshold_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("interval", sa.String(16), nullable=False),
        sa.Column("notification_channel", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_spend_alerts_scope_seq", "spend_alerts", ["scope", "seq"])
    with op.batch_alter_table("usage") as batch:
        for name, kind in QUANTITIES:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        for name, _ in reversed(QUANTITIES):
            batch.drop_column(name)
    op.drop_index("ix_spend_alerts_scope_seq", "spend_alerts")
    op.drop_table("spend_alerts")
    op.drop_table("spend_limits")
