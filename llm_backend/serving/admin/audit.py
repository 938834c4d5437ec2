"""The audit log (``GET /v1/organization/audit_logs``): who changed what in the control plane.

Each change makes its entry in the change's own transaction (the stores take an ``audit``
callable: ``entry``), so a change is logged exactly once or not made. The actor is the key
that asked - its id, never the key: an admin key (``type: user``, as OpenAI's admin keys are
users'; here its id is the key's own) or, for an operator on the command line, none
(``storage/audit_log.actor_of``). Refused admin logins are logged too, by the core
(``http/refused_logins.py``: every admin operation is checked there, whichever family serves
it). Nothing edits or deletes an entry.
"""

from __future__ import annotations

from typing import Any

from ... import errors
from ...auth import Principal
from ...storage.audit_log import AuditFilter, actor_of, new_entry
from ..lists import check_limit
from ..services import Services
from . import objects

# ``entry(project=CHANGED)``: the event is scoped to the project the change made.
CHANGED = object()


def entry(
    principal: Principal | None, type: str, details: dict[str, Any], *, project: Any = None, resource_id: str | None = None
):
    """The ``audit`` callable of a change: its entry, made from what changed (``changed`` may
    name the resource: an id, or a row with one). ``project``: the project row or id the
    event is scoped to."""
    made_by, made_by_id = actor_of(principal)

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
