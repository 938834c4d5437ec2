"""The audit log chained: each entry sealed to the one before it (storage/audit_chain.py).

``chain_index`` (its place) and ``chain`` (HMAC-SHA256 under the audit log's key of its
place, the previous seal and its fields) on every entry; the entries already there are
sealed here, in their order, under the key the upgrading process was given (the service's
and ``llm-backend db upgrade``'s: ``audit_log_key`` or the data directory's key), so the
chain starts at the first entry ever written. The append-only triggers are set aside for
that one UPDATE, inside this migration's transaction. On SQLite a trigger also refuses an
INSERT whose ``seq`` or ``id`` is an entry's: ``INSERT OR REPLACE`` deletes the old row
without firing DELETE triggers, and BEFORE INSERT triggers run before that conflict is
resolved (checked on SQLite 3.40), so the replacement is refused before anything is removed.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from llm_backend.storage import audit_chain

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

REFUSAL = "the audit log is append-only"


def upgrade() -> None:
    connection = op.get_bind()
    postgresql = connection.dialect.name == "postgresql"
    op.add_column("audit_log", sa.Column("chain_index", sa.BigInteger, nullable=True))
    op.add_column("audit_log", sa.Column("chain", sa.String(64), nullable=True))
    op.create_index("ux_audit_log_chain_index", "audit_log", ["chain_index"], unique=True)
    key = context.config.attributes.get("audit_key") or audit_chain.UNKEYED
    entries = sa.table("audit_log", sa.column("seq"), sa.column("chain_index"), sa.column("chain"),
                       *(sa.column(name, sa.JSON if name in ("actor", "details") else None) for name in audit_chain.FIELDS))
    rows = connection.execute(sa.select(entries).order_by(entries.c.seq)).mappings().all()
    if rows:
        if postgresql:
            op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        else:
            op.execute("DROP TRIGGER audit_log_no_update")
        previous = audit_chain.GENESIS
        for position, row in enumerate(rows):
            previous = audit_chain.seal(key, position, previous, dict(row))
            connection.execute(
                entries.update().where(entries.c.seq == row["seq"]).values(chain_index=position, chain=previous)
            )
        if postgresql:
            op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
        else:
            _refuse("UPDATE")
    if not postgresql:
        op.execute(
            "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
            "WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq OR id = NEW.id) "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def _refuse(event: str) -> None:
    op.execute(
        f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER audit_log_no_replace")
    op.drop_index("ux_audit_log_chain_index", "audit_log")
    # SQLite drops a column by copying the table (batch mode), which would drop the triggers.
    op.execute("ALTER TABLE audit_log DROP COLUMN chain")
    op.execute("ALTER TABLE audit_log DROP COLUMN chain_index")
