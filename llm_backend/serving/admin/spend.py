"""Hard spend limits and spend alerts, the organisation's and each project's, as the Admin
API sets them (their enforcement and firing: ``serving/metering/meter.py``). Amounts are
cents of USD a calendar month (UTC), the only currency and interval OpenAI's document
allows."""

from __future__ import annotations

from ... import errors
from ...auth import Principal
from ...json.types import Json
from ..services import Services, required
from . import objects
from .audit import entry
from .projects import project_of

ORGANISATION = ""
# OpenAI's event types nearest to these changes (its audit log has none named for spend).
LIMIT_EVENT, ALERT_EVENT = "tenant.billing.overage_limit.updated", "tenant.billing.alerts.updated"


# The largest amount a 64-bit column keeps (both databases): beyond it a 400, not a 500.
MAX_THRESHOLD = 2**63 - 1


def _threshold(body: Json) -> int:
    amount = body["threshold_amount"]
    if amount > MAX_THRESHOLD:
        raise errors.bad_request(
            f"Invalid 'threshold_amount': {amount}. Expected a value at most {MAX_THRESHOLD}.",
            "threshold_amount", "integer_above_max_value",
        )
    return amount


async def _scope(services: Services, project_id: str | None):
    """(scope, the project row or None) of an operation: "" for the organisation's."""
    if project_id is None:
        return ORGANISATION, None
    return project_id, await project_of(services, project_id)


def _limit_object(scope: str, row, enforcing: bool) -> Json:
    return {
        "object": "project.spend_limit" if scope else "organization.spend_limit",
        "threshold_amount": row.threshold_cents,
        "currency": row.currency,
        "interval": row.interval,
        "enforcement": {"status": "enforcing" if enforcing else "inactive"},
    }


async def get_limit(services: Services, project_id: str | None = None) -> Json:
    scope, _ = await _scope(services, project_id)
    database = services.database
    row = await database.run(database.spend.limit, scope)
    if row is None:
        raise errors.not_found("spend limit", project_id or "organization", "project_id" if project_id else "spend_limit")
    return _limit_object(scope, row, await required(services.spend_meter, "a spend meter").reached(scope, row.threshold_cents))


async def set_limit(services: Services, caller: Principal, body: Json, project_id: str | None = None) -> Json:
    scope, project = await _scope(services, project_id)
    changes = {"threshold_amount": _threshold(body), "currency": body["currency"], "interval": body["interval"]}
    audit = entry(caller, LIMIT_EVENT, {"changes_requested": changes}, project=project, resource_id=project_id or "organization")
    database = services.database
    row = await database.run(database.spend.set_limit, scope, body["threshold_amount"], body["currency"], body["interval"], audit)
    return _limit_object(scope, row, await required(services.spend_meter, "a spend meter").reached(scope, row.threshold_cents))


async def delete_limit(services: Services, caller: Principal, project_id: str | None = None) -> Json:
    scope, project = await _scope(services, project_id)
    audit = entry(caller, LIMIT_EVENT, {"changes_requested": {"deleted": True}}, project=project, resource_id=project_id or "organization")
    database = services.database
    if not await database.run(database.spend.delete_limit, scope, audit):
        raise errors.not_found("spend limit", project_id or "organization", "project_id" if project_id else "spend_limit")
    return {"object": ("project" if scope else "organization") + ".spend_limit.deleted", "deleted": True}


# --- alerts ------------------------------------------------------------------------------------


def alert_object(row) -> Json:
    return {
        "id": row.id,
        "object": "project.spend_alert" if row.scope else "organization.spend_alert",
        "threshold_amount": row.threshold_cents,
        "currency": row.currency,
        "interval": row.interval,
        "notification_channel": row.notification_channel,
    }


def _alert_values(body: Json) -> Json:
    return {
        "threshold_cents": _threshold(body), "currency": body["currency"], "interval": body["interval"],
        "notification_channel": body["notification_channel"],
    }


async def list_alerts(
    services: Services, project_id: str | None = None, limit: int | None = None, order: str = "asc",
    after: str | None = None, before: str | None = None,
) -> Json:
    scope, _ = await _scope(services, project_id)
    limit = 20 if limit is None else limit
    if not 1 <= limit <= 100:  # the document allows 0; a page of nothing pages nowhere
        raise errors.bad_request(f"Invalid 'limit': {limit}. Expected a value between 1 and 100.", "limit", "integer_out_of_range")
    database = services.database
    try:
        rows, has_more = await database.run(database.spend.alerts, scope, after, before, limit, order or "asc")
    except LookupError as missing:
        raise errors.not_found("spend alert", str(missing), "after" if after is not None else "before") from None
    return objects.page([alert_object(row) for row in rows], has_more)


async def create_alert(services: Services, caller: Principal, body: Json, project_id: str | None = None) -> Json:
    scope, project = await _scope(services, project_id)
    audit = entry(caller, ALERT_EVENT, {"changes_requested": {"created": _public(body)}}, project=project)
    database = services.database
    return alert_object(await database.run(database.spend.create_alert, scope, _alert_values(body), audit))


async def alert_of(services: Services, alert_id: str, project_id: str | None = None):
    scope, _ = await _scope(services, project_id)
    database = services.database
    row = await database.run(database.spend.alert, scope, alert_id)
    if row is None:
        raise errors.not_found("spend alert", alert_id, "alert_id")
    return row


async def update_alert(services: Services, caller: Principal, alert_id: str, body: Json, project_id: str | None = None) -> Json:
    scope, project = await _scope(services, project_id)
    await alert_of(services, alert_id, project_id)
    audit = entry(caller, ALERT_EVENT, {"changes_requested": _public(body)}, project=project)
    database = services.database
    row = await database.run(database.spend.update_alert, scope, alert_id, _alert_values(body), audit)
    if row is None:
        raise errors.not_found("spend alert", alert_id, "alert_id")
    return alert_object(row)


async def delete_alert(services: Services, caller: Principal, alert_id: str, project_id: str | None = None) -> Json:
    scope, project = await _scope(services, project_id)
    audit = entry(caller, ALERT_EVENT, {"changes_requested": {"deleted": True}}, project=project)
    database = services.database
    if not await database.run(database.spend.delete_alert, scope, alert_id, audit):
        raise errors.not_found("spend alert", alert_id, "alert_id")
    return {"id": alert_id, "object": ("project" if scope else "organization") + ".spend_alert.deleted", "deleted": True}


def _public(body: Json) -> Json:
    """An alert's settings as the audit log keeps them (recipients are addresses: kept)."""
    return {name: body[name] for name in ("threshold_amount", "currency", "interval", "notification_channel") if name in body}
