"""File batches of vector stores, and each store file's batch.

``vector_store_file_batches``: a batch's id, store, owner, creation time and whether it
was cancelled; its counts and status are computed from its files (``batch_id`` on
``vector_store_files``), so they cannot drift. An index on ``vector_store_files.status``
lets the start-up recovery find the files a killed process left ``in_progress``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SEQUENCE_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vector_store_file_batches",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "vector_store_seq", SEQUENCE_TYPE, sa.ForeignKey("vector_stores.seq", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    with op.batch_alter_table("vector_store_files") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(64), nullable=True))
        batch.create_index("ix_vector_store_files_batch_id", ["batch_id"])
        batch.create_index("ix_vector_store_files_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("vector_store_files") as batch:
        batch.drop_index("ix_vector_store_files_status")
        batch.drop_index("ix_vector_store_files_batch_id")
        batch.drop_column("batch_id")
    op.drop_table("vector_store_file_batches")
