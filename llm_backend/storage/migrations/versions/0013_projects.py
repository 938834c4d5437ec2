"""Projects are the tenants: every key belongs to one, every stored object is owned by one.

New tables ``projects`` and ``service_accounts``; ``api_keys`` gains its project, service
account, admin flag, expiry and redacted value; ``usage`` the project of each record.

Each tenant that existed before gets its own project, so that nothing becomes visible to
anyone who could not see it before (docs/ADMIN.md):
- a managed key (``apikey_…``, revoked ones too: their objects stay theirs) gets a project
  ``proj_…`` and a service account, both named after the key; its objects' ``owner`` - in
  every table with one, found in the schema - is renamed from the key's id to the project's
  (recorded in ``owner_renames``); its usage keeps the key as ``api_key_id`` and names the
  project;
- every other owner of stored objects (a static key's name, an unnamed static key's digest
  ``key-…``, an owner no key has any more) is the id of a static project of its own: the
  row is made here, so the Admin API lists it; static keys configured later get theirs at
  start-up (``ProjectStore.ensure_static``). ``anonymous`` (no keys) gets none.
One transaction, under the migration lock on PostgreSQL (storage/migrate.py): replicas
starting together do it once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SEQUENCE_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Tables whose ``owner`` is not a tenant of stored objects: the key's own accounting.
KEY_TABLES = {"usage", "rate_limit_counters", "owner_renames"}
ANONYMOUS = "anonymous"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(128), nullable=False, unique=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("archived_at", sa.BigInteger, nullable=True),
        sa.Column("static", sa.Boolean, nullable=False),
        sa.Column("retention", sa.String(48), nullable=False, server_default="organization_default"),
        sa.Column("hosted_tools", sa.JSON, nullable=True),
    )
    op.create_table(
        "service_accounts",
        sa.Column("seq", SEQUENCE_TYPE, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_service_accounts_project_seq", "service_accounts", ["project_id", "seq"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("project_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("service_account_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("admin", sa.Boolean, nullable=False, server_default="0"))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("redacted_value", sa.String(64), nullable=False, server_default="sk-llmb-…"))
        batch.create_index("ix_api_keys_project", ["project_id"])
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("project_id", sa.String(128), nullable=True))
    _projects_for_tenants(op.get_bind())


def _owner_tables(connection: sa.Connection) -> list[str]:
    inspector = sa.inspect(connection)
    return [
        name
        for name in inspector.get_table_names()
        if name not in KEY_TABLES and "owner" in {column["name"] for column in inspector.get_columns(name)}
    ]


def _projects_for_tenants(connection: sa.Connection) -> None:
    now = int(time.time())
    projects = sa.table("projects", *(sa.column(n) for n in ("id", "name", "created_at", "archived_at", "static", "retention")))
    accounts = sa.table("service_accounts", *(sa.column(n) for n in ("id", "project_id", "name", "role", "created_at")))
    keys = sa.table(
        "api_keys", sa.column("id"), sa.column("name"), sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("project_id"), sa.column("service_account_id"),
    )
    renamed: dict[str, str] = {}
    for key_id, name, created_at in connection.execute(sa.select(keys.c.id, keys.c.name, keys.c.created_at).order_by(keys.c.created_at)).all():
        project_id, account_id = "proj_" + uuid.uuid4().hex[:24], "svc_acct_" + uuid.uuid4().hex[:24]
        created = int(created_at.timestamp()) if created_at is not None else now
        connection.execute(projects.insert().values(
            id=project_id, name=name[:256], created_at=created, archived_at=None, static=False, retention="organization_default"
        ))
        connection.execute(accounts.insert().values(id=account_id, project_id=project_id, name=name[:256], role="member", created_at=created))
        connection.execute(keys.update().where(keys.c.id == key_id).values(project_id=project_id, service_account_id=account_id))
        renamed[key_id] = project_id
    counts = dict.fromkeys(renamed, 0)
    others: set[str] = set()
    for name in _owner_tables(connection):
        table = sa.table(name, sa.column("owner"))
        for owner, count in connection.execute(sa.select(table.c.owner, sa.func.count()).group_by(table.c.owner)).all():
            if owner in renamed:
                counts[owner] += count
            elif owner != ANONYMOUS:
                others.add(owner)
        if renamed:
            # One statement per table: a row is renamed once, whatever the mapping's order.
            connection.execute(table.update().where(table.c.owner.in_(renamed)).values(owner=sa.case(renamed, value=table.c.owner)))
    usage = sa.table("usage", sa.column("owner"), sa.column("project_id"))
    project_of = sa.case(renamed, value=usage.c.owner, else_=usage.c.owner) if renamed else usage.c.owner
    connection.execute(usage.update().values(project_id=project_of))
    if renamed:
        renames = sa.table("owner_renames", *(sa.column(n) for n in ("old_owner", "new_owner", "rows", "renamed_at")))
        connection.execute(renames.insert().values([
            {"old_owner": old, "new_owner": new, "rows": counts[old], "renamed_at": sa.func.now()} for old, new in renamed.items()
        ]))
    for owner in sorted(others):
        connection.execute(projects.insert().values(
            id=owner, name=owner[:256], created_at=now, archived_at=None, static=True, retention="organization_default"
        ))


def downgrade() -> None:
    connection = op.get_bind()
    renames = sa.table("owner_renames", sa.column("old_owner"), sa.column("new_owner"))
    back = dict(connection.execute(
        sa.select(renames.c.new_owner, renames.c.old_owner).where(renames.c.old_owner.like("apikey\\_%", escape="\\"))
    ).all())
    if back:
        for name in _owner_tables(connection):
            table = sa.table(name, sa.column("owner"))
            connection.execute(table.update().where(table.c.owner.in_(back)).values(owner=sa.case(back, value=table.c.owner)))
        connection.execute(renames.delete().where(renames.c.old_owner.in_(list(back.values()))))
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("project_id")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_project")
        for column in ("redacted_value", "expires_at", "admin", "service_account_id", "project_id"):
            batch.drop_column(column)
    op.drop_index("ix_service_accounts_project_seq", "service_accounts")
    op.drop_table("service_accounts")
    op.drop_table("projects")
