"""Spend, as it happens: each answer priced (``prices.py``) into its project's and the
organisation's month, hard spend limits held, spend alerts fired.

- **Counting.** Every answer's usage reaches ``spend`` (a listener of the metrics' one
  usage-recording interface). Its price in micro-dollars is added to the month's ``spend``
  windows of ``rate_limit_counters`` (owners ``spend:<project>`` and ``spend:``): one atomic
  UPSERT each, just after the answer, off its path - every replica adds to the same rows.
- **Hard limits.** A request of a project (``admit``, when its key is checked, before its
  body is read) reads both months' counts in one query and is refused with OpenAI's 429
  ``insufficient_quota`` once either has reached its limit, on every replica, until the limit
  is raised or the month (UTC) ends. Spend is known after an answer, so the answer that
  crosses a limit is given; the requests after it are not (as token limits). Admin keys are
  never refused (they must be able to raise a limit).
- **Alerts.** After each addition, each alert of the project or the organisation whose
  threshold the new total reached is claimed for the month (a conditional UPSERT that only
  the first replica wins) and fired once: an audit log entry and, when
  ``spend_alert_webhook_url`` is set, a POST of a signed body (Standard Webhooks' headers, as
  OpenAI signs its webhooks: the SDK's ``webhooks.verify_signature`` checks it). This service
  sends no email: the body names the alert's recipients for the receiver to notify.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx

from ...auth import ANONYMOUS, Principal
from ...storage.audit_log import new_entry
from ...storage.governance import Alert
from ...storage.usage import Measured
from ..services import Services
from .errors import insufficient_quota
from .prices import PriceTable

log = logging.getLogger(__name__)
SPEND = "spend"  # the counters' kind: micro-dollars in a month's window
MICROS_PER_CENT = 10_000
WEBHOOK_ATTEMPTS, WEBHOOK_TIMEOUT = 3, 10.0


def month_start(now: float | None = None) -> int:
    moment = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def spend_owner(scope: str) -> str:
    """The counters' owner of a scope's spend ("" the organisation): never a key's (':')."""
    return f"spend:{scope}"


class SpendMeter:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.database = services.database
        self.prices = PriceTable(services.settings.prices)
        self._tasks: set[asyncio.Task] = set()

    # --- counting ---------------------------------------------------------------------------------

    def spend(self, principal: Principal, model: str, measured: Measured) -> None:
        cost = self.prices.micro_dollars(measured.family, model, measured)
        if cost <= 0:
            return
        self._background(self._count(principal.owner, cost))

    def _background(self, work) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count(self, project: str, cost: int) -> None:
        month = month_start()
        scopes = ["", project] if project != ANONYMOUS else [""]
        totals = {}
        for scope in scopes:
            totals[scope] = (await self.database.run(self.database.rate_counters.add, spend_owner(scope), [(SPEND, month)], cost))[0]
        for alert in self.database.governance.last().alerts:
            total = totals.get(alert.scope)
            if total is not None and total >= alert.threshold_cents * MICROS_PER_CENT:
                claimed, _ = await self.database.run(
                    self.database.rate_counters.admit, f"alert:{alert.id}", [(SPEND, month, 1, 1)], []
                )
                if claimed:
                    await self._fire(alert, total, month)

    async def settled(self) -> None:
        """Wait for the spend being counted (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- hard limits ------------------------------------------------------------------------------

    async def admit(self, principal: Principal) -> None:
        """429 ``insufficient_quota`` once the project's or the organisation's month has
        reached its hard limit."""
        if principal.admin:
            return
        limits = (await self.database.governance.current()).spend_limits
        scopes = [scope for scope in ("", principal.owner) if scope in limits]
        if not scopes:
            return
        month = month_start()
        counts = await self.database.run(self.database.rate_counters.read, [(spend_owner(s), SPEND, month) for s in scopes])
        for scope in scopes:
            if counts.get((spend_owner(scope), SPEND, month), 0) >= limits[scope] * MICROS_PER_CENT:
                raise insufficient_quota("organization" if scope == "" else f"project {scope}", limits[scope])

    async def reached(self, scope: str, threshold_cents: int) -> bool:
        """Whether ``scope``'s month has reached ``threshold_cents`` (a limit: enforcing)."""
        month = month_start()
        counts = await self.database.run(self.database.rate_counters.read, [(spend_owner(scope), SPEND, month)])
        return counts.get((spend_owner(scope), SPEND, month), 0) >= threshold_cents * MICROS_PER_CENT

    async def spent_cents(self, scope: str) -> float:
        month = month_start()
        counts = await self.database.run(self.database.rate_counters.read, [(spend_owner(scope), SPEND, month)])
        return counts.get((spend_owner(scope), SPEND, month), 0) / MICROS_PER_CENT

    # --- alerts -----------------------------------------------------------------------------------

    async def _fire(self, alert: Alert, total: int, month: int) -> None:
        spent_cents = total // MICROS_PER_CENT
        fired = {"threshold_amount": alert.threshold_cents, "spent_amount": spent_cents, "interval_start": month}
        project = (alert.scope, None) if alert.scope else None
        made = new_entry(
            "tenant.billing.alerts.updated", {"tenant.billing.alerts.updated": {"id": alert.id, "changes_requested": {"fired": fired}}},
            actor=None, actor_id=None, project=project, resource_id=alert.id,
        )
        await self.database.run(self.database.audit_log.append, [made])
        log.warning("spend alert fired", extra={"alert": alert.id, "project": alert.scope or None, "spent_cents": spent_cents})
        url = self.services.settings.spend_alert_webhook_url
        if url:
            event = {
                "object": "event", "id": "evt_" + uuid.uuid4().hex, "type": "spend_alert.fired", "created_at": int(time.time()),
                "data": {
                    "alert_id": alert.id, "project_id": alert.scope or None, "currency": "USD", "interval": "month",
                    "notification_channel": alert.notification_channel, **fired,
                },
            }
            await self._deliver(url, event)

    async def _deliver(self, url: str, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        secret = self.services.settings.spend_alert_webhook_secret
        headers = {"content-type": "application/json", **signed(event["id"], body, secret.get_secret_value() if secret else None)}
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as client:
            for attempt in range(WEBHOOK_ATTEMPTS):
                try:
                    answer = await client.post(url, content=body, headers=headers)
                    if answer.status_code < 300:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(2**attempt)
        log.error("spend alert not delivered to its webhook", extra={"alert": event["data"]["alert_id"]})


def signed(event_id: str, body: bytes, secret: str | None) -> dict[str, str]:
    """Standard Webhooks' headers: ``webhook-signature`` is ``v1,`` and a base64 HMAC-SHA256
    of ``id.timestamp.body`` with the secret (``whsec_`` and base64, OpenAI's form)."""
    timestamp = str(int(time.time()))
    headers = {"webhook-id": event_id, "webhook-timestamp": timestamp}
    if secret:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        headers["webhook-signature"] = "v1," + base64.b64encode(digest).decode()
    return headers
