"""Per-model rate limits of projects (the Admin API's ``project.rate_limit``): one row per
project and model that has any; their windows are counted in ``rate_limit_counters``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LIMITS = (
    "max_requests_per_1_minute", "max_tokens_per_1_minute", "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute", "max_requests_per_1_day", "batch_1_day_max_input_tokens",
)


def upgrade() -> None:
    op.create_table(
        "project_rate_limits",
        sa.Column("project_id", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(256), primary_key=True),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in LIMITS),
    )


def downgrade() -> None:
    op.drop_table("project_rate_limits")
