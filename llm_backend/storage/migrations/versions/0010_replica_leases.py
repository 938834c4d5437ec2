"""Replicas that agree: a background response's events written as it runs, and a lease on
vector store indexing.

``response_events``: one row per stream event of a background response, written while it
runs (every quarter second, the last ones with its final object), so that any replica
streams it again, live or ended. They were one JSON list (``responses.events``, 0007)
written when the response ended, which only the replica running it could follow; the lists
are moved here and the column is dropped.

``vector_store_files.leased_at``: when the process indexing (or holding in its queue) a
file ``in_progress`` last renewed its claim; a file whose lease ran out is taken over by a
live process, as background responses are (null: never claimed, free to take).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

responses = sa.table("responses", sa.column("id", sa.String), sa.column("events", sa.JSON))
events = sa.table(
    "response_events",
    sa.column("response_id", sa.String),
    sa.column("sequence_number", sa.Integer),
    sa.column("event", sa.JSON),
)


def upgrade() -> None:
    op.create_table(
        "response_events",
        sa.Column(
            "response_id", sa.String(64), sa.ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("sequence_number", sa.Integer, primary_key=True),
        sa.Column("event", sa.JSON, nullable=False),
    )
    connection = op.get_bind()
    kept = connection.execute(sa.select(responses.c.id, responses.c.events).where(responses.c.events.is_not(None))).all()
    for response_id, listed in kept:
        rows = [{"response_id": response_id, "sequence_number": e["sequence_number"], "event": e} for e in listed or []]
        if rows:
            connection.execute(events.insert(), rows)
    # ALTER TABLE in place (SQLite >= 3.35 too), never a batch copy of the table: SQLite's
    # DROP TABLE of the old copy would cascade to the rows that reference it.
    op.drop_column("responses", "events")
    op.add_column("vector_store_files", sa.Column("leased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("vector_store_files", "leased_at")
    op.add_column("responses", sa.Column("events", sa.JSON, nullable=True))
    connection = op.get_bind()
    listed: dict[str, list] = {}
    for response_id, event in connection.execute(
        sa.select(events.c.response_id, events.c.event).order_by(events.c.response_id, events.c.sequence_number)
    ):
        listed.setdefault(response_id, []).append(event)
    for response_id, kept in listed.items():
        connection.execute(responses.update().where(responses.c.id == response_id).values(events=kept))
    op.drop_table("response_events")
