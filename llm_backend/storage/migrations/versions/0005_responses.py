"""Responses and Conversations (the stateful OpenAI API).

``responses``: one row per stored response: the object as last shown, its request, its
input items (with ids) and the links that rebuild history (``previous_response_id``,
``conversation_id``). ``conversations`` and their ordered ``conversation_items``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEQUENCE_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("input_items", sa.JSON, nullable=False),
        sa.Column("previous_response_id", sa.String(64), nullable=True),
        sa.Column("conversation_id", sa.String(64), nullable=True),
        sa.Column("background", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_responses_status", "responses", ["status"])
    op.create_table(
        "conversations",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "conversation_items",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_seq",
            SEQUENCE_TYPE,
            sa.ForeignKey("conversations.seq", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("item", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_conversation_items_conversation_id", "conversation_items", ["conversation_seq", "id"], unique=True
    )
    op.create_index("ix_conversation_items_conversation_seq", "conversation_items", ["conversation_seq", "seq"])


def downgrade() -> None:
    op.drop_index("ix_conversation_items_conversation_seq", table_name="conversation_items")
    op.drop_index("ix_conversation_items_conversation_id", table_name="conversation_items")
    op.drop_table("conversation_items")
    op.drop_table("conversations")
    op.drop_index("ix_responses_status", table_name="responses")
    op.drop_table("responses")
