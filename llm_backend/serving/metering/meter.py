"""Spend, as it happens: each answer priced (``prices.py``) into its project's and the
organisation's month, hard spend limits held, spend alerts fired.

- **Counting.** Every answer's usage reaches ``spend`` (a listener of the metrics' one
  usage-recording interface). Its price in micro-dollars is added to the month's ``spend``
  windows of ``rate_limit_counters`` (owners ``spend:<project>`` and ``spend:``): one atomic
  UPSERT each, just after the answer, off its path - every replica adds to the same rows.
  Each answer's exact cost is added with the fraction of a micro-dollar the ones before left
  (per scope, in this process), so that many small answers count what ``/costs`` shows.
- **Hard limits: reserved, not counted after the fact.** Under a hard limit (the project's
  or the organisation's), a request is held to it twice. When its key is checked, before its
  body is read (``admit``), it is refused with OpenAI's 429 ``insufficient_quota`` once
  either month has reached its limit. Once its body and model are known
  (``http/project_limits.admit_model``), ``hold`` reserves the most it can cost
  (``holds.py``: its output cap or the model's room, and its input, at the model's price) in
  the month's ``spend_held`` windows of every limited scope: one transaction that locks them
  and refuses (``insufficient_quota``) when spent + held + this would pass a limit
  (``storage/rate_counters.reserve``), so concurrent requests on any replica cannot pass a
  limit together. Its answers' costs go to the hold; when the request ends, however it ends
  (answered, failed, its client gone: ``settle`` from the edge's end of the request), one
  transaction adds the real cost and takes the hold back. So a limit is passed only by what
  the estimate cannot see (a persona's prompt, an image named by URL, a Realtime
  conversation's earlier items) or by a request of unknown most (no output cap, no known
  context: it holds all that remains, so it runs alone). A transcription, an unpriced model
  and a project under no hard limit hold nothing (no round trip). A replica killed in a
  request leaves its hold until the month ends. Admin keys are never refused (they must be
  able to raise a limit). A batch line (``hold(wait=True)``) whose most does not fit while
  requests of this process hold part of the limit waits for them to settle and asks again:
  it is refused (which ends its batch) only by what is spent, or held by other replicas, so
  a batch stops within one line's most of its limit whatever its concurrency.
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
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx

from ...auth import ANONYMOUS, Principal
from ...errors import insufficient_quota, spend_not_held
from ...settings.admin import Price
from ...storage.audit_log import new_entry
from ...storage.admin_snapshot import Alert
from ...storage.rate_counters import SPEND
from ...storage.usage import Measured
from ...settings import Settings
from ...storage import Database
from .prices import PriceTable

log = logging.getLogger(__name__)
MICROS_PER_CENT = 10_000
WEBHOOK_ATTEMPTS, WEBHOOK_TIMEOUT = 3, 10.0


def month_start(now: float | None = None) -> int:
    moment = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def spend_owner(scope: str) -> str:
    """The counters' owner of a scope's spend ("" the organisation): never a key's (':')."""
    return f"spend:{scope}"


@dataclass(eq=False)
class Hold:
    """What one request holds against its scopes' hard limits (micro-dollars, in ``month``),
    and what its answers have cost so far (exact micro-dollars, counted when it settles)."""

    project: str
    scopes: list[str]
    micros: int
    month: int
    cost: Decimal = field(default_factory=Decimal)
    settled: bool = False


class SpendMeter:
    def __init__(self, settings: Settings, database: Database, current_hold: Callable[[], Hold | None] = lambda: None) -> None:
        """``current_hold``: the hold of the request being served (the app's: the request's record keeps it)."""
        self.settings = settings
        self.database = database
        self.prices = PriceTable(settings.prices)
        self._tasks: set[asyncio.Task] = set()
        self._carried: dict[str, Decimal] = {}  # per scope: the fraction of a micro-dollar not counted yet
        self.current_hold = current_hold
        self._live: set[Hold] = set()  # this process's holds not yet taken back in the counters
        self._released = asyncio.Event()  # set (and replaced) each time one of them is

    # --- counting ---------------------------------------------------------------------------------

    def spend(self, principal: Principal, model: str, measured: Measured) -> None:
        cost = self.prices.micro_dollars(measured.family, model, measured)
        if cost <= 0:
            return
        hold = self.current_hold()
        if hold is not None and not hold.settled and hold.project == principal.owner:
            hold.cost += cost  # counted with its hold's release, when the request ends
            return
        self._background(self._count(principal.owner, cost))

    def _background(self, work) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _whole(self, scope: str, cost: Decimal) -> int:
        """``cost``'s whole micro-dollars with what earlier answers left over; the rest carried."""
        total = self._carried.get(scope, Decimal(0)) + cost
        whole = int(total)
        self._carried[scope] = total - whole
        return whole

    @staticmethod
    def _scopes(project: str) -> list[str]:
        return ["", project] if project != ANONYMOUS else [""]

    async def _count(self, project: str, cost: Decimal, hold: Hold | None = None) -> None:
        month = month_start()
        spent = [(spend_owner(scope), self._whole(scope, cost)) for scope in self._scopes(project)]
        held = [(spend_owner(scope), hold.month, hold.micros) for scope in hold.scopes] if hold is not None else []
        if hold is None and not any(amount for _, amount in spent):
            return
        try:
            counts = await self.database.run(self.database.rate_counters.settle, month, spent, held)
        finally:
            if hold is not None:
                self._release(hold)
        totals = {scope: count for scope, count in zip(self._scopes(project), counts)}
        for alert in self.database.admin_snapshot.last().alerts:
            total = totals.get(alert.scope)
            if total is not None and total >= alert.threshold_cents * MICROS_PER_CENT:
                claimed, _ = await self.database.run(
                    self.database.rate_counters.admit, f"alert:{alert.id}", [(SPEND, month, 1, 1)], []
                )
                if claimed:
                    await self._fire(alert, total, month)

    def _release(self, hold: Hold) -> None:
        self._live.discard(hold)
        self._released.set()
        self._released = asyncio.Event()

    def _holding(self, scope: str) -> bool:
        """Whether a request of this process holds part of ``scope``'s limit."""
        return any(scope in hold.scopes for hold in self._live)

    async def settled(self) -> None:
        """Wait for the spend being counted (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- hard limits ------------------------------------------------------------------------------

    async def hold(
        self, principal: Principal, model: str, family: str, most: Callable[[Price], Measured | None], wait: bool = False
    ) -> Hold | None:
        """Reserve what a request of ``principal`` on ``model`` can cost at most under its
        scopes' hard limits, or 429 ``insufficient_quota``; None when it holds nothing (no
        limit, nothing priced: then ``most`` is not even asked). ``most(price)``: its
        largest usage of ``family`` (``holds.most_usage``), None when unknown. ``wait``
        (batch lines): refused while requests of this process hold part of the limit, it
        waits for one of them to be taken back and asks again."""
        if principal.admin:
            return None
        limits = (await self.database.admin_snapshot.current()).spend_limits
        scopes = [scope for scope in ("", principal.owner) if scope in limits]
        price = self.prices.price(model) if scopes else None
        if price is None:
            return None
        usage = most(price)
        amount = None if usage is None else math.ceil(self.prices.micro_dollars(family, model, usage))
        if amount == 0:
            return None
        month = month_start()
        owners = [(spend_owner(scope), limits[scope] * MICROS_PER_CENT) for scope in scopes]
        while True:
            released = self._released  # before asking: a release after the answer wakes the wait
            taken, refused = await self.database.run(self.database.rate_counters.reserve, month, owners, amount)
            if refused is None:
                break
            scope = refused.removeprefix("spend:")
            if wait and self._holding(scope):
                await released.wait()
                continue
            named = "organization" if scope == "" else f"project {scope}"
            # Asked for all that remained (no most known), it is refused only when none does.
            if taken <= 0 or amount is None:
                raise insufficient_quota(named, limits[scope])
            raise spend_not_held(named, limits[scope], amount, taken, family)
        hold = Hold(principal.owner, scopes, taken, month)
        self._live.add(hold)
        return hold

    def settle(self, hold: Hold | None) -> None:
        """The request holding ``hold`` is over: its real cost counted and its hold taken back
        (once, however often called), off the request's path."""
        if hold is None or hold.settled:
            return
        hold.settled = True
        self._background(self._count(hold.project, hold.cost, hold))

    async def admit(self, principal: Principal) -> None:
        """429 ``insufficient_quota`` once the project's or the organisation's month has
        reached its hard limit."""
        if principal.admin:
            return
        limits = (await self.database.admin_snapshot.current()).spend_limits
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
        url = self.settings.spend_alert_webhook_url
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
        secret = self.settings.spend_alert_webhook_secret
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
