"""The audit log (``GET /v1/organization/audit_logs``): who changed what in the control plane.

Each change makes its entry in the change's own transaction (the stores take an ``audit``
callable: ``entry``), so a change is logged exactly once or not made. The actor is the key
that asked - its id, never the key: an admin key (``type: user``, as OpenAI's admin keys are
users'; here its id is the key's own) or, for an operator on the command line, none. A
refused admin login (401 or 403 on an admin operation) is logged too, at most
``REFUSALS_PER_MINUTE`` per replica and minute in each budget (a flood of bad keys must not
fill the database; the rest are counted in a warning): one for requests without a key, one
for wrong keys, and one for each valid key without the right, so that keyless noise cannot
use up the entries that log a real key's probing (issue #56). Nothing edits or deletes an
entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ... import errors
from ...auth import ANONYMOUS, Principal
from ...storage import Database
from ...storage.audit_log import AuditFilter, new_entry
from ..lists import check_limit
from ..services import Services
from . import objects

log = logging.getLogger(__name__)
REFUSALS_PER_MINUTE = 60  # in each budget (see the module's docstring)
# ``entry(project=CHANGED)``: the event is scoped to the project the change made.
CHANGED = object()


def actor(principal: Principal | None) -> tuple[dict[str, Any] | None, str | None]:
    """(OpenAI's ``actor`` object, the id ``actor_ids[]`` filters on) of ``principal``."""
    if principal is None:
        return None, None
    if principal.owner == ANONYMOUS:  # no keys configured: whoever is on loopback
        return {"type": "api_key", "api_key": {"id": ANONYMOUS, "type": "user"}}, ANONYMOUS
    key = {"id": principal.key, "type": "user" if principal.admin else "service_account"}
    return {"type": "api_key", "api_key": key}, principal.key


def entry(
    principal: Principal | None, type: str, details: dict[str, Any], *, project: Any = None, resource_id: str | None = None
):
    """The ``audit`` callable of a change: its entry, made from what changed (``changed`` may
    name the resource: an id, or a row with one). ``project``: the project row or id the
    event is scoped to."""
    made_by, made_by_id = actor(principal)

    def make(changed: Any) -> dict[str, Any]:
        resource = resource_id or getattr(changed, "id", changed if isinstance(changed, str) else None)
        scoped = changed if project is CHANGED else project
        if scoped is not None and not isinstance(scoped, tuple):
            scoped = (scoped.id, scoped.name) if hasattr(scoped, "name") else (scoped, None)
        body = {"id": resource, **details} if resource is not None else dict(details)
        return new_entry(type, {type: body}, actor=made_by, actor_id=made_by_id, project=scoped, resource_id=resource)

    return make


def as_openai(row) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": row.id, "type": row.type, "effective_at": row.effective_at}
    if row.project_id is not None:
        shown["project"] = {"id": row.project_id, **({"name": row.project_name} if row.project_name else {})}
    if row.actor is not None:
        shown["actor"] = row.actor
    return {**shown, **row.details}


async def list_page(
    services: Services, effective_at: dict | None = None, project_ids: list[str] | None = None,
    event_types: list[str] | None = None, actor_ids: list[str] | None = None, actor_emails: list[str] | None = None,
    resource_ids: list[str] | None = None, tenant_only: bool = False, limit: int = 20, after: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    bounds = {name: value for name, value in (effective_at or {}).items() if name in ("gt", "gte", "lt", "lte")}
    for name, value in bounds.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.bad_request(f"Invalid 'effective_at[{name}]': expected an integer.", f"effective_at[{name}]", "invalid_value")
    if actor_emails:
        # No actor here has an email (keys only): a filter on emails selects nothing.
        return objects.page([], False)
    where = AuditFilter(
        **bounds, project_ids=list(project_ids or ()), event_types=list(event_types or ()), actor_ids=list(actor_ids or ()),
        resource_ids=list(resource_ids or ()), tenant_only=bool(tenant_only),
    )
    database = services.database
    try:
        rows, has_more = await database.run(database.audit_log.page, where, after, before, check_limit(limit))
    except LookupError as missing:
        raise errors.not_found("audit log entry", str(missing), "after" if after is not None else "before") from None
    return objects.page([as_openai(row) for row in rows], has_more)


class RefusedLogins:
    """Refused admin logins into the audit log (``login.failed``), bounded per minute in
    budgets of their own (``budget``)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._minute = 0
        self._counts: dict[str, int] = {}  # budget -> refusals this minute
        self._tasks: set[asyncio.Task] = set()

    def __call__(self, principal: Principal | None, error: errors.OpenAIError) -> None:
        minute = int(time.time()) // 60
        if minute != self._minute:
            beyond = sum(count - REFUSALS_PER_MINUTE for count in self._counts.values() if count > REFUSALS_PER_MINUTE)
            if beyond:
                log.warning("refused admin logins beyond the audit log's budget", extra={"not_logged": beyond})
            self._minute, self._counts = minute, {}
        kind = budget(principal, error)
        count = self._counts[kind] = self._counts.get(kind, 0) + 1
        if count > REFUSALS_PER_MINUTE:
            return
        made = entry(principal, "login.failed", {"error_code": error.code or "", "error_message": error.message})(None)
        database = self.database
        task = asyncio.get_running_loop().create_task(database.run(database.audit_log.append, [made]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def budget(principal: Principal | None, error: errors.OpenAIError) -> str:
    """The budget a refused login counts in: a valid key's own (its id: the keys that exist
    bound how many); else its refusal's (no key, a wrong key: the catalogue's two messages)."""
    return f"key {principal.key}" if principal is not None else f"refusal {error.message}"
