"""A vector store's ``description`` (createVectorStore's), kept and shown: it was accepted
and dropped.

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vector_stores") as batch:
        batch.add_column(sa.Column("description", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vector_stores") as batch:
        batch.drop_column("description")
