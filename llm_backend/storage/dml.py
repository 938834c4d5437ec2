"""The rows an UPDATE or DELETE changed: what a compare-and-set (a lease claimed, a state
moved on only from the one it was read in) or a delete by id asks after it ran.

``Session.execute`` is typed to answer a ``Result`` whatever the statement; for a DML
statement it is a ``CursorResult``, the one that counts its rows (SQLAlchemy's own advice
is to cast it). One place says so, for every store.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase


def rows_changed(session: Session, statement: UpdateBase) -> int:
    """``statement`` run in ``session``; the number of rows it matched."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount
