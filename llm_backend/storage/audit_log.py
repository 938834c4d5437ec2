"""The audit log's rows: appended, sealed into the chain (``audit_chain.py``), and read newest
first with OpenAI's filters. Nothing here updates or deletes a row (the table's triggers would
refuse it: revisions 0014, 0019)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from ..auth import ANONYMOUS, Principal
from . import audit_chain
from .models import AuditLogEntry

if TYPE_CHECKING:
    from .handle import DatabaseHandle


@dataclass
class AuditFilter:
    """OpenAI's filters of ``list-audit-logs`` (an empty list: no filter)."""

    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None
    project_ids: list[str] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    actor_ids: list[str] = field(default_factory=list)
    resource_ids: list[str] = field(default_factory=list)
    tenant_only: bool = False


def new_entry(
    type: str, details: dict[str, Any], *, actor: dict[str, Any] | None, actor_id: str | None,
    project: tuple[str, str | None] | None = None, resource_id: str | None = None,
) -> dict[str, Any]:
    """A row to append: ``project`` is (id, name) of the project the event is scoped to."""
    return {
        "id": "audit_log-" + uuid.uuid4().hex[:24],
        "type": type,
        "effective_at": int(time.time()),
        "project_id": project[0] if project else None,
        "project_name": project[1] if project else None,
        "actor_id": actor_id,
        "actor": actor,
        "resource_id": resource_id,
        "details": details,
    }


def actor_of(principal: Principal | None) -> tuple[dict[str, Any] | None, str | None]:
    """(OpenAI's ``actor`` object, the id ``actor_ids[]`` filters on) of ``principal``: the key
    that asked - its id, never the key (``type: user`` for an admin key, as OpenAI's admin keys
    are users'); None: an operator on the command line."""
    if principal is None:
        return None, None
    if principal.owner == ANONYMOUS:  # no keys configured: whoever is on loopback
        return {"type": "api_key", "api_key": {"id": ANONYMOUS, "type": "user"}}, ANONYMOUS
    key = {"id": principal.key, "type": "user" if principal.admin else "service_account"}
    return {"type": "api_key", "api_key": key}, principal.key


# A change's audit entry, made from what it changed (None: no entry).
Audit = Callable[[Any], dict[str, Any]] | None


def append_in(session, audit, changed: Any) -> None:
    """The audit entry of a change, in the change's own transaction: both or neither."""
    if audit is not None:
        insert_entries(session, [audit(changed)])


def insert_entries(session, entries: list[dict[str, Any]]) -> None:
    """``entries`` sealed into the chain and inserted, in ``session``'s transaction (which
    holds the chain's head until it ends: keep it short after this)."""
    key = session.info.get("audit_key") or audit_chain.UNKEYED
    session.execute(insert(AuditLogEntry), audit_chain.chained(session, key, entries))


class AuditLogStore:
    def __init__(self, database: DatabaseHandle) -> None:
        self._database = database

    def append(self, entries: list[dict[str, Any]]) -> None:
        if entries:
            with self._database.sessions.begin() as session:
                insert_entries(session, entries)

    def verify(self) -> audit_chain.Verdict:
        """The chain checked under this database's key (``llm-backend audit verify``)."""
        with self._database.sessions() as session:
            return audit_chain.verify(session, self._database.audit_key or audit_chain.UNKEYED)

    def page(self, where: AuditFilter, after: str | None, before: str | None, limit: int) -> tuple[list[AuditLogEntry], bool]:
        """Newest first: ``after`` an entry, the older ones; ``before`` it, the newer ones
        (``LookupError`` naming the cursor when it is no entry)."""
        column = AuditLogEntry
        query = select(column)
        bounds = ((where.gt, column.effective_at.__gt__), (where.gte, column.effective_at.__ge__),
                  (where.lt, column.effective_at.__lt__), (where.lte, column.effective_at.__le__))
        for value, compare in bounds:
            if value is not None:
                query = query.where(compare(value))
        for values, attribute in ((where.project_ids, column.project_id), (where.event_types, column.type),
                                  (where.actor_ids, column.actor_id), (where.resource_ids, column.resource_id)):
            if values:
                query = query.where(attribute.in_(values))
        if where.tenant_only:
            query = query.where(column.type.like("tenant.%"))
        newest_first = True
        with self._database.sessions() as session:
            for cursor, older in ((after, True), (before, False)):
                if cursor is not None:
                    seq = session.scalar(select(column.seq).where(column.id == cursor))
                    if seq is None:
                        raise LookupError(cursor)
                    query = query.where(column.seq < seq if older else column.seq > seq)
                    newest_first = older
            ordered = column.seq.desc() if newest_first else column.seq.asc()
            rows = list(session.scalars(query.order_by(ordered).limit(limit + 1)))
        has_more = len(rows) > limit
        rows = rows[:limit]
        return (rows if newest_first else rows[::-1]), has_more
