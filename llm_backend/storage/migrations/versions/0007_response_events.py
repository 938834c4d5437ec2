"""Keep a background response's stream events, so that ``GET /v1/responses/{id}?stream=true``
replays them after it ended (the same events, the same sequence numbers).

``responses.events``: a JSON list, null for responses whose events were not kept (not in
the background, or made before this revision).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("events", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("events")
