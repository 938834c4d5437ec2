"""Rate-limit counters in the database, so that every replica on one PostgreSQL counts a
key's requests and tokens together (http/rate_limits.py uses them when the database is
PostgreSQL, or when ``rate_limit_storage`` says ``database``).

Fixed windows aligned to the clock (a minute starts at :00, a day at 00:00 UTC), one row per
(key name, kind, window). A request is admitted by one conditional UPSERT -
``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 WHERE count < limit RETURNING
count`` - which PostgreSQL runs atomically per row: two replicas racing for a key's last
request cannot both get it, and a refused request is not counted. Tokens are added the same
way, without a condition, once an answer reports them. Old windows are deleted now and then.
One round trip per admitted request (about 0.3 ms on a local PostgreSQL), in a worker thread.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .models import RateLimitCounter

if TYPE_CHECKING:
    from . import Database

# Windows older than this are deleted (a day's window must outlive its day).
KEEP_SECONDS = 2 * 86400
PRUNE_INTERVAL = 300.0
Counts = dict[tuple[str, int], int]  # (kind, window start) -> count


class RateCounters:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._insert = postgresql.insert if database.dialect == "postgresql" else sqlite.insert
        self._pruned = 0.0

    def _upsert(self, owner: str, kind: str, window: int, amount: int, below: int | None = None):
        statement = self._insert(RateLimitCounter).values(owner=owner, kind=kind, window=window, count=amount)
        table = RateLimitCounter.__table__
        return statement.on_conflict_do_update(
            index_elements=["owner", "kind", "window"],
            set_={"count": table.c.count + statement.excluded.count},
            where=(table.c.count < below) if below is not None else None,
        ).returning(table.c.count)

    def admit(self, owner: str, request_window: tuple[int, int] | None, read: list[tuple[str, int]]) -> tuple[bool, Counts]:
        """Count one request of ``owner`` in ``request_window`` ((window start, limit), None:
        requests unlimited) unless its limit is reached; read the counts of ``read``
        ((kind, window start)). With ``read`` counts returned as they stand, the caller
        decides about tokens; a request refused for its tokens must not count: the caller
        passes ``request_window=None`` then and reads the requests' count."""
        counts: Counts = {}
        with self._database.sessions.begin() as session:
            if read:
                rows = session.execute(
                    select(RateLimitCounter.kind, RateLimitCounter.window, RateLimitCounter.count).where(
                        RateLimitCounter.owner == owner,
                        RateLimitCounter.window.in_({window for _, window in read}),
                        RateLimitCounter.kind.in_({kind for kind, _ in read}),
                    )
                ).all()
                counts = {(kind, window): count for kind, window, count in rows}
            admitted = True
            if request_window is not None:
                window, limit = request_window
                counted = session.execute(self._upsert(owner, "requests", window, 1, below=limit)).scalar()
                admitted = counted is not None
                counts[("requests", window)] = counted if admitted else limit
        return admitted, counts

    def add(self, owner: str, windows: list[tuple[str, int]], amount: int) -> None:
        """Add ``amount`` (tokens) to each of ``owner``'s ``windows`` ((kind, window start))."""
        with self._database.sessions.begin() as session:
            for kind, window in windows:
                session.execute(self._upsert(owner, kind, window, amount))
            now = time.time()
            if now - self._pruned > PRUNE_INTERVAL:
                self._pruned = now
                session.execute(delete(RateLimitCounter).where(RateLimitCounter.window < int(now) - KEEP_SECONDS))
