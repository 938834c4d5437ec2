"""The database's clock: the one clock every replica shares.

A lease written by one replica and judged by another must not compare the two machines'
clocks (a replica whose clock runs an hour behind would write leases that have already
run out for everyone else). So lease times and expiry checks are evaluated in SQL, by the
database: ``database_now(seconds)`` is "now, plus ``seconds``" as the database reads it,
usable in a ``WHERE`` or a ``SET``; ``database_epoch()`` is now in Unix seconds, for the
columns kept as integers (``expires_at``).

SQLite has no ``now()``: ``strftime`` gives UTC in the text form SQLAlchemy stores
``DateTime`` values in (``YYYY-MM-DD HH:MM:SS.ffffff``), so the stored values and the
computed ones compare as text in time order.
"""

from __future__ import annotations

from sqlalchemy import DateTime, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal


class database_now(FunctionElement):  # noqa: N801 - reads as the SQL function it is
    """The database's current time plus ``seconds`` (negative: in the past)."""

    type = DateTime(timezone=True)
    name = "database_now"
    # ``seconds`` is part of the statement's cache key: a statement using it is compiled once
    # per distinct lease, not on every run (an idle runner's claim, each second, compiled its
    # query anew: most of an idle server's CPU).
    inherit_cache = True
    _traverse_internals = [("seconds", InternalTraversal.dp_plain_obj)]

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = float(seconds)
        super().__init__()


class database_epoch(FunctionElement):  # noqa: N801
    """The database's current time in Unix seconds."""

    type = Float()
    inherit_cache = True
    name = "database_epoch"


@compiles(database_now)
def _now_default(element: database_now, compiler, **kw) -> str:
    # PostgreSQL: statement_timestamp(), not now() (the transaction's start: a long one
    # would write leases already partly spent).
    return f"(statement_timestamp() + make_interval(secs => {element.seconds!r}))"


@compiles(database_now, "sqlite")
def _now_sqlite(element: database_now, compiler, **kw) -> str:
    # %f is SS.SSS; three more digits give SQLAlchemy's stored form (microseconds).
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', '{element.seconds:+.3f} seconds')"


@compiles(database_epoch)
def _epoch_default(element: database_epoch, compiler, **kw) -> str:
    return "extract(epoch from statement_timestamp())"


@compiles(database_epoch, "sqlite")
def _epoch_sqlite(element: database_epoch, compiler, **kw) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"
