"""DML every store shares. The rows an UPDATE or DELETE changed: what a compare-and-set (a
lease claimed, a state moved on only from the one it was read in) or a delete by id asks
after it ran. And the INSERT that says what to do on a conflict, which SQLAlchemy gives per
dialect (SQLite's and PostgreSQL's ``on_conflict_do_nothing``/``_do_update``).

``Session.execute`` is typed to answer a ``Result`` whatever the statement; for a DML
statement it is a ``CursorResult``, the one that counts its rows (SQLAlchemy's own advice
is to cast it). One place says so, for every store.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase


def rows_changed(session: Session, statement: UpdateBase) -> int:
    """``statement`` run in ``session``; the number of rows it matched."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def conflict_insert(dialect: str) -> Any:
    """``insert`` of ``dialect`` (a ``Database.dialect``), with its ``on_conflict_*`` clauses."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
