"""Rate-limit counters in the database, so that every replica on one PostgreSQL counts a
key's requests and tokens together (http/key_limits.py uses them when the database is
PostgreSQL, or when ``rate_limit_storage`` says ``database``).

Fixed windows aligned to the clock (a minute starts at :00, a day at 00:00 UTC), one row per
(key name, kind, window). A request is admitted by one conditional UPSERT -
``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 WHERE count < limit RETURNING
count`` - which PostgreSQL runs atomically per row: two replicas racing for a key's last
request cannot both get it, and a refused request is not counted. Tokens are added the same
way, without a condition, once an answer reports them. Old windows are deleted now and then.
One round trip per admitted request (about 0.3 ms on a local PostgreSQL), in a worker thread.

Spend (serving/metering/meter.py) is held before it is known: ``reserve`` adds a request's
most to its scopes' ``spend_held`` windows in one transaction that first locks them (an
UPSERT of nothing) and refuses when spent + held + it would pass a limit, so replicas
reserve in turn; ``settle`` adds the real cost and takes the hold back, in one transaction.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, tuple_

from .dml import conflict_insert
from .models import RateLimitCounter

if TYPE_CHECKING:
    from .handle import DatabaseHandle

# Windows older than this are deleted (a day's window must outlive its day; a month's, its month).
KEEP_SECONDS = 2 * 86400
KEEP_MONTH_SECONDS = 40 * 86400
SPEND, HELD = "spend", "spend_held"  # micro-dollars of a month: counted, held by requests in flight
MONTH_KINDS = (SPEND, HELD)
PRUNE_INTERVAL = 300.0
Counts = dict[tuple[str, int], int]  # (kind, window start) -> count


class _Refused(Exception):
    """A conditional window at its limit: the admission's transaction is rolled back."""


class RateCounters:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database
        self._insert = conflict_insert(database.dialect)
        self._pruned = 0.0

    def _upsert(self, owner: str, kind: str, window: int, amount: int, below: int | None = None):
        statement = self._insert(RateLimitCounter).values(owner=owner, kind=kind, window=window, count=amount)
        table = RateLimitCounter.__table__
        return statement.on_conflict_do_update(
            index_elements=["owner", "kind", "window"],
            set_={"count": table.c.count + statement.excluded.count},
            where=(table.c.count < below) if below is not None else None,
        ).returning(table.c.count)

    def admit(
        self, owner: str, conditional: list[tuple[str, int, int, int]], read: list[tuple[str, int]]
    ) -> tuple[bool, Counts]:
        """Count ``amount`` in each of ``owner``'s ``conditional`` windows ((kind, window start,
        amount, limit)) unless one is at its limit: all or none, in one transaction (on
        PostgreSQL each row is locked from its upsert to the commit, so replicas admit in
        turn); and read the counts of ``read`` ((kind, window start)). With ``read`` counts
        returned as they stand, the caller decides about tokens; a request refused for its
        tokens must not count: the caller passes no ``conditional`` then."""
        counts: Counts = {}
        admitted = True
        try:
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
                for kind, window, amount, limit in conditional:
                    counted = session.execute(self._upsert(owner, kind, window, amount, below=limit)).scalar()
                    if counted is None:
                        counts[(kind, window)] = limit
                        raise _Refused
                    counts[(kind, window)] = counted
        except _Refused:
            admitted = False
            # Rolled back: the windows counted before the refusal are as they were.
            for kind, window, amount, limit in conditional:
                if counts.get((kind, window), limit) != limit:
                    counts[(kind, window)] -= amount
        return admitted, counts

    def add(self, owner: str, windows: list[tuple[str, int]], amount: int) -> list[int]:
        """Add ``amount`` (tokens, micro-dollars) to each of ``owner``'s ``windows`` ((kind,
        window start)); their counts after it, in order."""
        with self._database.sessions.begin() as session:
            # An upsert with no condition writes its row: RETURNING gives exactly one.
            counts = [session.execute(self._upsert(owner, kind, window, amount)).scalar_one() for kind, window in windows]
            self._prune(session)
        return counts

    def _prune(self, session) -> None:
        now = time.time()
        if now - self._pruned > PRUNE_INTERVAL:
            self._pruned = now
            month = RateLimitCounter.kind.in_(MONTH_KINDS)
            session.execute(delete(RateLimitCounter).where(~month, RateLimitCounter.window < int(now) - KEEP_SECONDS))
            session.execute(delete(RateLimitCounter).where(month, RateLimitCounter.window < int(now) - KEEP_MONTH_SECONDS))

    def reserve(self, window: int, limits: list[tuple[str, int]], amount: int | None) -> tuple[int, str | None]:
        """Hold ``amount`` (None: all that remains under the tightest limit) in the ``HELD``
        window of each of ``limits``' owners ((owner, limit), always in the same order, so
        replicas lock in turn), unless spent + held + ``amount`` would pass one's limit:
        (the amount held, None), or (what remained, the owner that refused it)."""
        with self._database.sessions.begin() as session:
            left: dict[str, int] = {}
            for owner, limit in limits:
                held = session.execute(self._upsert(owner, HELD, window, 0)).scalar_one()  # the row locked till commit
                spent = session.execute(
                    select(RateLimitCounter.count).where(
                        RateLimitCounter.owner == owner, RateLimitCounter.kind == SPEND, RateLimitCounter.window == window
                    )
                ).scalar()
                left[owner] = limit - (spent or 0) - held
            tightest = min(left, key=left.__getitem__)
            taken = left[tightest] if amount is None else amount
            if taken <= 0 or taken > left[tightest]:
                return left[tightest], tightest
            for owner, _ in limits:
                session.execute(self._upsert(owner, HELD, window, taken))
        return taken, None

    def settle(self, window: int, spent: list[tuple[str, int]], held: list[tuple[str, int, int]]) -> list[int]:
        """Add each of ``spent`` ((owner, micro-dollars)) to the owner's ``SPEND`` in
        ``window`` and take each of ``held`` ((owner, the month it was held in, amount))
        back from its ``HELD``, in one transaction: never a moment with neither counted.
        The spend counts after it, in ``spent``'s order."""
        with self._database.sessions.begin() as session:
            counts = [session.execute(self._upsert(owner, SPEND, window, amount)).scalar_one() for owner, amount in spent]
            for owner, month, amount in held:
                session.execute(self._upsert(owner, HELD, month, -amount))
            self._prune(session)
        return counts

    def read(self, keys: list[tuple[str, str, int]]) -> dict[tuple[str, str, int], int]:
        """The counts of ``keys`` ((owner, kind, window start)) in one query; absent: none yet."""
        if not keys:
            return {}
        table = RateLimitCounter
        with self._database.sessions() as session:
            rows = session.execute(
                select(table.owner, table.kind, table.window, table.count).where(
                    tuple_(table.owner, table.kind, table.window).in_(keys)
                )
            ).all()
        return {(owner, kind, window): count for owner, kind, window, count in rows}
