"""Projects' per-model rate limits (the Admin API's ``project.rate_limit``), held across
replicas: requests per minute and per day, tokens per minute, images per minute, audio
megabytes per minute, batch input tokens per day.

A request naming a model is admitted once its body is read (``admit``: ``routed_by_model``
for every JSON body with a model - fast lane, Connexion, batch lines - the audio uploads,
each request of a Realtime session: a response, a turn's transcription; the forwarded
operations that name a model, images with their ``n``: ``forwarded_usage.py``), after its key
was checked and counted (``key_limits.py``). Which limits a
project has is the control plane's snapshot (``storage/admin_snapshot.py``: configuration,
read again every 2 s); the counts are in the database's ``rate_limit_counters``, always
(whatever ``rate_limit_storage`` says for keys), so every replica counts together: the
request's windows are counted by one transaction of conditional UPSERTs, all or none
(storage/rate_counters.py), never after a read of this process's memory. Tokens are added
when an answer reports them (``spend``); a request is refused once its window's tokens are
spent, not for the tokens it is about to use. Past a limit: OpenAI's 429
``rate_limit_exceeded`` with ``retry-after``.

A request's model is resolved once, here, to the model it names (``ModelRegistry.canonical``:
a local model's aliases and personas, an upstream alias, a pool): its limits, its price and
its metered usage key on that model (``Record.metered_model``), so that an alias cannot
pass its model's limits or be answered unpriced. Here too a request under a hard spend
limit reserves the most it can cost (``serving/metering/meter.py``), settled when it ends:
every lane, batch lines and forwarded image operations (their ``n`` images) included.

Batch lines (``backends.base.background``) are held to ``batch_1_day_max_input_tokens``
alone: a line that finds the day's batch input tokens spent fails with that 429 (its error
line), and each line's input tokens count when it is answered. The interactive limits do
not count batch lines, as OpenAI keeps batch limits apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time

from ..auth import ANONYMOUS, Principal
from ..backends.base import background
from ..serving.admin import hosted_tools
from ..serving.admin.errors import model_rate_limited
from ..storage import Database
from ..storage.admin_snapshot import ModelLimits
from ..serving.metering.holds import most_usage
from ..serving.services import required
from ..settings.admin import Price
from ..storage.usage import COMPLETIONS, IMAGES, Measured
from . import context
from .metrics import USAGE_FAMILIES

DAY = 86400
MEGABYTE = 1_000_000
# Window kinds in rate_limit_counters (a key's are requests, tokens, tokens_day).
REQUESTS, REQUESTS_DAY, TOKENS, AUDIO_BYTES, BATCH_TOKENS = "requests", "requests_day", "tokens", "audio_bytes", "batch_tokens"
IMAGES = "images"  # images asked for (``n``) of a forwarded image operation (http/forwarded_usage.py)


def subject(project: str, model: str) -> str:
    """The counters' owner for a project's model: fixed length, never a key's owner (no ':' in those)."""
    return "m:" + hashlib.sha256(f"{project}\x00{model}".encode()).hexdigest()[:40]


class ProjectLimits:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.counters = database.rate_counters
        self._pending: set[asyncio.Task] = set()

    async def _limits(self, principal: Principal, model: str) -> ModelLimits | None:
        if principal.owner == ANONYMOUS:
            return None
        return (await self.database.admin_snapshot.current()).rate_limits.get((principal.owner, model))

    async def admit(self, principal: Principal, model: str, audio_bytes: int = 0, images: int = 0) -> None:
        """Count one request of ``principal``'s project on ``model`` (and its ``images``), or 429."""
        limits = await self._limits(principal, model)
        if limits is None:
            return
        now = time.time()
        minute, day = int(now) // 60 * 60, int(now) // DAY * DAY
        owner = subject(principal.owner, model)
        if background.get():
            if limits.batch_1_day_max_input_tokens is not None:
                _, counts = await self.database.run(self.counters.admit, owner, [], [(BATCH_TOKENS, day)])
                self._check_spent(principal, model, counts.get((BATCH_TOKENS, day), 0), limits.batch_1_day_max_input_tokens,
                                  "batch input tokens", "day", day + DAY - now)
            return
        conditional = [
            (kind, start, amount, limit)
            for kind, start, amount, limit in (
                (REQUESTS, minute, 1, limits.max_requests_per_1_minute),
                (REQUESTS_DAY, day, 1, limits.max_requests_per_1_day),
                (AUDIO_BYTES, minute, audio_bytes, (limits.max_audio_megabytes_per_1_minute or 0) * MEGABYTE or None),
                (IMAGES, minute, images, limits.max_images_per_1_minute),
            )
            if limit is not None and amount > 0
        ]
        tokens_limit = limits.max_tokens_per_1_minute
        read = [(TOKENS, minute)] if tokens_limit is not None else []
        if not conditional and not read:
            return
        admitted, counts = await self.database.run(self.counters.admit, owner, conditional, read)
        if not admitted:
            kind, start, _, limit = next(window for window in conditional if counts.get(window[:2]) == window[3])
            per, reset = ("day", start + DAY - now) if kind == REQUESTS_DAY else ("min", start + 60 - now)
            named = {AUDIO_BYTES: "audio bytes", IMAGES: "images"}.get(kind, "requests")
            raise model_rate_limited(model, principal.owner, named, per, limit, counts[(kind, start)], math.ceil(reset))
        if tokens_limit is not None:
            self._check_spent(principal, model, counts.get((TOKENS, minute), 0), tokens_limit,
                              "tokens", "min", minute + 60 - now)

    @staticmethod
    def _check_spent(principal: Principal, model: str, used: int, limit: int, kind: str, per: str, reset: float) -> None:
        if used >= limit:
            raise model_rate_limited(model, principal.owner, kind, per, limit, used, math.ceil(reset))

    def spend(self, principal: Principal, model: str, measured: Measured) -> None:
        """An answer's tokens, into the windows its project's limits on ``model`` count them in."""
        input_tokens, output_tokens = measured.input_tokens, measured.output_tokens
        limits = (self.database.admin_snapshot.last()).rate_limits.get((principal.owner, model))
        if limits is None or principal.owner == ANONYMOUS:
            return
        now = int(time.time())
        batch = background.get()
        windows = []
        if batch and limits.batch_1_day_max_input_tokens is not None and input_tokens > 0:
            windows.append(([(BATCH_TOKENS, now // DAY * DAY)], input_tokens))
        if not batch and limits.max_tokens_per_1_minute is not None and input_tokens + output_tokens > 0:
            windows.append(([(TOKENS, now // 60 * 60)], input_tokens + output_tokens))
        for kinds, amount in windows:
            task = asyncio.get_running_loop().create_task(
                self.database.run(self.counters.add, subject(principal.owner, model), kinds, amount)
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)


async def admit_model(
    model: str, audio_bytes: int = 0, body: dict | None = None, prefix: str = "", images: int = 0,
    held: dict | None = None, unread: int | None = None,
) -> None:
    """The request being served, held to its project's rules: its limits on the model
    ``model`` names (when the app has them), for a JSON ``body`` its hosted tool permissions
    (``prefix``: where ``body``'s tools are, ``session.`` for a Realtime session's), and its
    hard spend limits (the most it can cost held: ``hold_spend``, settled by the request's
    end: ``settle``). A forwarded request whose body is not read here is held by what was
    read of it (``held``: a Response's ``max_output_tokens``) and its size in bytes
    (``unread``: at most a token a byte), an image request by its ``images`` at their price."""
    services = context.current()
    record = context.record()
    record.metered_model = model = services.registry.canonical(model)
    if body is not None:
        await hosted_tools.check(services, context.caller(), body, prefix)
    if images:
        held = {"n": images}
    # First: a request refused for its spend counts in no window.
    await hold_spend(model, body if held is None else held, IMAGES if images else None, unread)
    limits = getattr(services, "project_limits", None)
    if limits is not None:
        await limits.admit(context.caller(), model, audio_bytes, images)


async def hold_spend(model: str, body: dict | None, family: str | None = None, input_tokens: int | None = None) -> None:
    """Reserve what the request being served can cost at most on ``model`` (already
    resolved: ``Record.metered_model``) under its hard spend limits, or 429
    ``insufficient_quota``; kept on its record until ``settle``, which must follow whatever
    happens (``middleware.Exchange.end`` for HTTP and WebSocket requests,
    ``BatchLines._answer`` for a batch line, which waits for this process's other holds
    rather than be refused by them: a refusal ends its batch)."""
    services = context.current()
    meter = getattr(services, "spend_meter", None)
    record = context.record()
    if meter is None or record.spend_hold is not None:
        return
    family = family or USAGE_FAMILIES.get(record.operation_id or "", COMPLETIONS)

    def most(price: Price) -> Measured | None:  # asked only under a limit, for a priced model
        backend = services.registry.backend_for_or_none(model)
        room = getattr(backend, "context_length", lambda _: None)(model)  # the audio backend knows none
        return most_usage(family, body, room if room is not None else price.context_window, input_tokens)

    record.spend_hold = await meter.hold(context.caller(), model, family, most, wait=background.get())


def settle(record: context.Record) -> None:
    """The request of ``record`` is over: its spend hold (if any) settled to its real cost."""
    if record.spend_hold is not None:  # made by the spend meter
        required(context.current().spend_meter, "a spend meter").settle(record.spend_hold)
