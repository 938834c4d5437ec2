"""Hard spend limits and spend alerts as the Admin API sets them: the organisation's (scope
"") and each project's. Every change is logged in its own transaction and the control
plane's snapshot read again (``admin_snapshot.py``)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from .audit_log import Audit, append_in
from .dml import rows_changed
from .models import SpendAlert, SpendLimit
from .paging import seq_page

if TYPE_CHECKING:
    from .handle import DatabaseHandle


class SpendStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def limit(self, scope: str) -> SpendLimit | None:
        with self._database.sessions() as session:
            return session.get(SpendLimit, scope)

    def set_limit(self, scope: str, threshold_cents: int, currency: str, interval: str, audit: Audit = None) -> SpendLimit:
        with self._database.sessions.begin() as session:
            row = session.get(SpendLimit, scope, with_for_update=True)
            if row is None:
                row = SpendLimit(scope=scope)
                session.add(row)
            row.threshold_cents, row.currency, row.interval = threshold_cents, currency, interval
            append_in(session, audit, scope or None)
        self._database.admin_snapshot.changed()
        return row

    def delete_limit(self, scope: str, audit: Audit = None) -> bool:
        with self._database.sessions.begin() as session:
            deleted = rows_changed(session, delete(SpendLimit).where(SpendLimit.scope == scope))
            if deleted:
                append_in(session, audit, scope or None)
        self._database.admin_snapshot.changed()
        return bool(deleted)

    # --- alerts ----------------------------------------------------------------------------------

    def create_alert(self, scope: str, values: dict[str, Any], audit: Audit = None) -> SpendAlert:
        row = SpendAlert(id="alert_" + uuid.uuid4().hex[:24], scope=scope, created_at=int(time.time()), **values)
        with self._database.sessions.begin() as session:
            session.add(row)
            append_in(session, audit, row)
        self._database.admin_snapshot.changed()
        return row

    def alerts(self, scope: str, after: str | None, before: str | None, limit: int, order: str) -> tuple[list[SpendAlert], bool]:
        where = [SpendAlert.scope == scope]
        with self._database.sessions() as session:
            if before is not None:  # the page before ``before``: read backwards, shown in order
                rows, has_more = seq_page(session, SpendAlert, where, before, limit, "desc" if order == "asc" else "asc")
                return rows[::-1], has_more
            return seq_page(session, SpendAlert, where, after, limit, order)

    def alert(self, scope: str, alert_id: str) -> SpendAlert | None:
        with self._database.sessions() as session:
            return session.scalar(select(SpendAlert).where(SpendAlert.scope == scope, SpendAlert.id == alert_id))

    def update_alert(self, scope: str, alert_id: str, values: dict[str, Any], audit: Audit = None) -> SpendAlert | None:
        with self._database.sessions.begin() as session:
            row = session.scalar(select(SpendAlert).where(SpendAlert.scope == scope, SpendAlert.id == alert_id).with_for_update())
            if row is not None:
                for name, value in values.items():
                    setattr(row, name, value)
                append_in(session, audit, row)
        self._database.admin_snapshot.changed()
        return row

    def delete_alert(self, scope: str, alert_id: str, audit: Audit = None) -> bool:
        with self._database.sessions.begin() as session:
            deleted = rows_changed(session, delete(SpendAlert).where(SpendAlert.scope == scope, SpendAlert.id == alert_id))
            if deleted:
                append_in(session, audit, alert_id)
        self._database.admin_snapshot.changed()
        return bool(deleted)
