"""The key that created each batch (issue #47): a batch's lines are requests of that key, so
each line is admitted only while the key is still valid and its project active.

``creator`` is the key as usage and the audit log name it (``Principal.key``: a managed key's
id, a static key's owner, ``anonymous``), never the key or its digest. Batches made before
this revision have none: their lines are held to their project alone.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("creator", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as table:
        table.drop_column("creator")
