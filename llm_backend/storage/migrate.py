"""Schema migrations (Alembic), run programmatically: at start-up and by ``llm-backend db upgrade``.

One linear history over several folders: the core's (``migrations/versions``) and each
family's that brings tables of its own (``Family.migrations``: ``families/<name>/migrations/``),
joined by Alembic's ``version_locations``. A revision revises the newest of the whole history,
wherever that one lives, so the database's one ``alembic_version`` row still says where it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The core's newest revision (tests/storage/test_migrations.py holds it to Alembic's own head):
# a database already there starts without loading Alembic (9 MB, 0.1 s of the API's start).
# With a family's folders the head is theirs to say: Alembic reads it (``upgrade``).
HEAD = "0021"
# PostgreSQL advisory lock key ("llmbmigr"): one replica migrates, the others wait for it and
# then find the schema at head.
MIGRATION_LOCK = 0x6C6D_6262_6D69_6772


def _config(folders: Sequence[Path] = ()) -> "Config":
    """Alembic's configuration: the core's revisions, and ``folders``' (the families')."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if folders:
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", os.pathsep.join(map(str, (MIGRATIONS / "versions", *folders))))
    return config


def upgrade(
    engine: Engine, revision: str = "head", owners: dict[str, str] | None = None, audit_key: bytes | None = None,
    folders: Sequence[Path] = (),
) -> None:
    """Bring the schema to ``revision``, in one transaction where the database allows.
    ``owners``: positional owners of static keys -> their owners now (revision 0009);
    ``audit_key``: the audit log's key, which seals the entries already there (0019);
    ``folders``: the families' revisions, in the history with the core's.

    Replicas starting together all call this: on PostgreSQL the first takes a transaction
    lock and the others wait for its commit, then read the version it wrote and do nothing.
    (SQLite serves one machine: its write lock already serializes the transactions.)"""
    if not folders and revision in ("head", HEAD) and current_revision(engine) == HEAD:
        return
    from alembic import command

    config = _config(folders)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        config.attributes["owners"] = owners or {}
        config.attributes["audit_key"] = audit_key
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision Alembic recorded (one row: the history is linear), read as plain SQL so
    that asking needs no Alembic; None when there is none yet."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None
