"""Record how a stored chat completion ended, keep audit-only rows, index metadata pairs.

``status``: ``completed``, or ``incomplete`` when the client left a stream early.
``store``: false for rows kept only by the store-everything audit setting.
Rows from 0001 were all asked for with ``store: true`` and answered in full.
``chat_completion_metadata``: one row per metadata pair, backfilled from the JSON column,
so ``metadata[key]=value`` filters are exact on every database.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


SEQUENCE_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("chat_completions") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="completed"))
        batch.add_column(sa.Column("store", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.drop_index("ix_chat_completions_owner_seq")
        batch.create_index("ix_chat_completions_owner_store_seq", ["owner", "store", "seq"])
    pairs = op.create_table(
        "chat_completion_metadata",
        sa.Column(
            "seq", SEQUENCE_TYPE, sa.ForeignKey("chat_completions.seq", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), nullable=False),
    )
    op.create_index("ix_chat_completion_metadata_key_value", "chat_completion_metadata", ["key", "value"])
    completions = sa.table("chat_completions", sa.column("seq", SEQUENCE_TYPE), sa.column("metadata", sa.JSON))
    connection = op.get_bind()
    rows = [
        {"seq": seq, "key": key, "value": value}
        for seq, metadata in connection.execute(sa.select(completions.c.seq, completions.c.metadata))
        for key, value in (metadata or {}).items()
    ]
    if rows:
        op.bulk_insert(pairs, rows)


def downgrade() -> None:
    op.drop_index("ix_chat_completion_metadata_key_value", table_name="chat_completion_metadata")
    op.drop_table("chat_completion_metadata")
    with op.batch_alter_table("chat_completions") as batch:
        batch.drop_index("ix_chat_completions_owner_store_seq")
        batch.create_index("ix_chat_completions_owner_seq", ["owner", "seq"])
        batch.drop_column("store")
        batch.drop_column("status")
