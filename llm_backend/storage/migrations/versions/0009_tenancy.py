"""Tenancy: forwarded objects' owners, and static keys' owners carried over from positions.

``forwarded_objects``: the id of each object an upstream keeps that was created (or first
shown) through a forwarded request, with the key that owns it here (serving/ownership.py).

Static keys used to be owned by their position in the settings (``key-0``, ``admin-0``);
now by their name (``alice=sk-...``) or a digest of the key (auth.py). This revision renames
every positional owner to the owner the same key has now, given as ``owners`` (``{"key-0":
"alice", ...}``, from the settings of the process that upgrades: ``Keyring.legacy_owners``),
in every table with an ``owner`` column (found in the schema, so that a table added by an
earlier revision is never missed); rate-limit windows of positional owners are dropped (a
window restarts). ``owner_renames`` records what was renamed. It runs once: the revision is
applied in one transaction, under the migration lock on PostgreSQL (storage/migrate.py),
and a later start with keys reordered finds it applied and renames nothing.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa
from alembic import context, op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

log = logging.getLogger("llm_backend.storage.migrations")
POSITIONAL = re.compile(r"(key|admin)-[0-9]{1,6}")


def upgrade() -> None:
    op.create_table(
        "forwarded_objects",
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "owner_renames",
        sa.Column("old_owner", sa.String(128), primary_key=True),
        sa.Column("new_owner", sa.String(128), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("renamed_at", sa.DateTime(timezone=True), nullable=False),
    )
    owners = dict(context.config.attributes.get("owners") or {})
    _carry_over(op.get_bind(), {old: new for old, new in owners.items() if old != new})


def _carry_over(connection: sa.Connection, owners: dict[str, str]) -> None:
    inspector = sa.inspect(connection)
    renamed = dict.fromkeys(owners, 0)
    left: dict[str, int] = {}
    for name in inspector.get_table_names():
        if name == "owner_renames" or "owner" not in {column["name"] for column in inspector.get_columns(name)}:
            continue
        table = sa.table(name, sa.column("owner"))
        positional = table.c.owner.like("key-%") | table.c.owner.like("admin-%")
        if "owner" in inspector.get_pk_constraint(name)["constrained_columns"]:
            # Counters keyed by owner (rate-limit windows): two positions may now share an
            # owner, and a window is short-lived; they restart.
            connection.execute(table.delete().where(positional))
            continue
        counted = sa.select(table.c.owner, sa.func.count()).where(positional).group_by(table.c.owner)
        for owner, count in connection.execute(counted):
            if owner in owners:
                renamed[owner] += count
            elif POSITIONAL.fullmatch(owner):
                left[owner] = left.get(owner, 0) + count
        if owners:
            # One statement per table: a row is renamed once, whatever the mapping's order.
            connection.execute(
                table.update().where(table.c.owner.in_(owners)).values(owner=sa.case(owners, value=table.c.owner))
            )
    if owners:
        renames = sa.table("owner_renames", *(sa.column(name) for name in ("old_owner", "new_owner", "rows", "renamed_at")))
        connection.execute(
            renames.insert().values(
                [{"old_owner": old, "new_owner": new, "rows": renamed[old], "renamed_at": sa.func.now()} for old, new in owners.items()]
            )
        )
    for owner, count in sorted(left.items()):
        log.warning(
            "positional owner not carried over: no key is at that position now",
            extra={"owner": owner, "rows": count},
        )


def downgrade() -> None:
    # Owners stay renamed: several positions may have become one name.
    op.drop_table("owner_renames")
    op.drop_table("forwarded_objects")
