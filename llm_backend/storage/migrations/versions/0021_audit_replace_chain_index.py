"""The audit log's REPLACE refusal covers every unique column (issue #56): ``chain_index`` too.

On SQLite, ``INSERT OR REPLACE`` deletes the row its new one conflicts with on any unique
column without firing DELETE triggers (it fires them only under ``PRAGMA recursive_triggers``,
a connection's setting: a script on the file would not set it). 0019's BEFORE INSERT trigger
refused a conflict on ``seq`` or ``id``, not on ``chain_index`` (its unique index
``ux_audit_log_chain_index``, 0019): a REPLACE with another entry's place in the chain deleted
that entry, which only ``audit verify`` showed. The trigger is made again with all three, so
the replacement is refused before anything is removed, whichever connection sends it.

PostgreSQL has no REPLACE: ``INSERT ... ON CONFLICT DO UPDATE`` is an UPDATE, which
``audit_log_no_change`` refuses, and ``DO NOTHING`` removes nothing; nothing changes there.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

REFUSAL = "the audit log is append-only"


def _no_replace(conflicts: str) -> None:
    op.execute("DROP TRIGGER audit_log_no_replace")
    op.execute(
        "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
        f"WHEN EXISTS (SELECT 1 FROM audit_log WHERE {conflicts}) "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _no_replace("seq = NEW.seq OR id = NEW.id OR chain_index = NEW.chain_index")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _no_replace("seq = NEW.seq OR id = NEW.id")
