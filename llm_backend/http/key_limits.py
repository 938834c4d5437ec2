"""Per-key rate limits: requests and tokens per minute, tokens per day, answered as OpenAI
answers them.

Each key has a requests-per-minute, a tokens-per-minute and a tokens-per-day limit (a managed
key its own, set by ``llm-backend keys create/update --rpm N --tpm N --tpd N``; the static
API keys the settings' ``rate_limit_rpm`` / ``_tpm`` / ``_tpd``; admin keys and the keyless
mode none).

- A request is admitted when its key checks out: ``LimitedAuthenticator`` wraps the one
  ``Authenticator`` both lanes (fast lane, Connexion's security) ask, so there is one place.
  With its day's or its minute's tokens spent, or over its requests, it is refused with 429
  ``rate_limit_exceeded`` and ``retry-after`` (the SDKs wait that long and retry).
- Tokens are spent when an answer reports them (``Metrics.count_tokens``): a request is not
  refused for the tokens it is about to use, the next one is, once the window's are spent.
- Every answer to a limited key carries OpenAI's ``x-ratelimit-{limit,remaining,reset}-
  {requests,tokens}`` headers (added by ``RequestContext`` from the request's record).

Where the counters live (``rate_limit_storage``): by default the database's own
``rate_limit_counters`` when it is PostgreSQL (every replica counts together, clock-aligned
fixed windows, storage/rate_counters.py), else this process's memory (``MemoryCounters``:
fixed windows from a key's first request); ``database``, or any ``limits`` storage URI
(``memory://``, ``redis://...``: its fixed windows, also from a key's first request),
choose explicitly.

A ``limits`` storage that is down (Redis stopped, unreachable) fails closed, visibly: a
limited key's request is answered 503 ``service_unavailable`` with ``retry-after`` (never
let in uncounted), and ``/ready`` fails until it answers again (``serving/readiness.py``).
After a failure the storage is left alone for ``RETRY_AFTER`` seconds (its requests refused
at once): the counters run on the event loop, and each try of a storage that does not
answer could hold it up to ``storage/limits_storage.TIMEOUT``; tokens answered meanwhile
are not counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.strategies import FixedWindowRateLimiter

from .. import errors
from ..auth import ANONYMOUS, Authenticator, Principal
from ..backends.base import background
from ..errors import OpenAIError
from ..settings import Settings
from ..storage import Database
from ..storage.limits_storage import in_limits, limits_storage
from ..storage.usage import Measured
from . import context

log = logging.getLogger(__name__)
Headers = list[tuple[bytes, bytes]]
REQUESTS, TOKENS, TOKENS_DAY = "requests", "tokens", "tokens_day"
DAY = 86400
RETRY_AFTER = 2  # seconds a storage that failed is left alone (and a refused request told to wait)


@dataclass(frozen=True)
class KeyLimits:
    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None

    @property
    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.tpd is not None


@dataclass(frozen=True)
class Window:
    """One limit as a request found it: how much of it is used and when it resets."""

    limit: int
    used: int
    reset: float  # seconds

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


UNLIMITED = KeyLimits()
Windows = dict[str, Window]


def _tokens_spent(windows: Windows) -> bool:
    return any(windows[kind].spent for kind in (TOKENS_DAY, TOKENS) if kind in windows)


def reset_text(seconds: float) -> str:
    """A duration as OpenAI writes its reset headers: ``120ms``, ``7s``, ``1m0s``."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60}s"


class LimitsCounters:
    """Counters of the ``limits`` library (memory, redis, ...): fixed windows from a key's first
    request. Synchronous: memory is a dict, redis one round trip per call. A storage that
    fails refuses requests for ``RETRY_AFTER`` seconds (503), then is tried again."""

    def __init__(self, uri: str) -> None:
        self.limiter = FixedWindowRateLimiter(limits_storage(uri))
        self._items: dict[tuple[str, int], RateLimitItem] = {}
        self._down_until = 0.0  # time.monotonic(): before it, the storage is not asked

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, error: StorageError) -> None:
        log.warning("the rate limits' storage failed: %s", error.storage_error)  # once a try, not once a request
        self._down_until = time.monotonic() + RETRY_AFTER

    def _item(self, kind: str, amount: int) -> RateLimitItem:
        item = self._items.get((kind, amount))
        if item is None:
            per = RateLimitItemPerDay if kind == TOKENS_DAY else RateLimitItemPerMinute
            item = self._items[(kind, amount)] = per(amount)
        return item

    def _window(self, kind: str, limit: int, owner: str) -> Window:
        item = self._item(kind, limit)
        stats = self.limiter.get_window_stats(item, kind, owner)
        used = limit - stats.remaining
        # The stats stop at the limit; a refusal says how far past it the tokens went. Past
        # the requests' limit the count holds refused requests too (``admit``): the limit it is.
        if not stats.remaining and kind != REQUESTS:
            used = max(used, int(self.limiter.storage.get(item.key_for(kind, owner))))
        return Window(limit, used, max(0.0, stats.reset_time - time.time()))

    async def admit(self, owner: str, limits: KeyLimits) -> tuple[bool, Windows]:
        if self._down():
            raise errors.limits_unavailable(RETRY_AFTER)
        try:
            return self._admit(owner, limits)
        except StorageError as error:
            self._failed(error)
            raise errors.limits_unavailable(RETRY_AFTER) from None

    def _admit(self, owner: str, limits: KeyLimits) -> tuple[bool, Windows]:
        windows: Windows = {}
        for kind, limit in ((TOKENS_DAY, limits.tpd), (TOKENS, limits.tpm)):
            if limit is not None:
                windows[kind] = self._window(kind, limit, owner)
        if limits.rpm is None:
            return not _tokens_spent(windows), windows
        item = self._item(REQUESTS, limits.rpm)
        # Counted and compared in one step (Redis: INCR in a script), so replicas sharing the
        # storage admit exactly the limit between them (a test, then a hit, let two through on
        # one count). A refused request is counted too, only ever once the limit is reached.
        admitted = not _tokens_spent(windows) and self.limiter.hit(item, REQUESTS, owner)
        windows[REQUESTS] = self._window(REQUESTS, limits.rpm, owner)
        return admitted, windows

    def spend(self, owner: str, limits: KeyLimits, tokens: int) -> None:
        if self._down():
            return  # an answer's tokens while the storage is down: not counted
        try:
            for kind, limit in ((TOKENS, limits.tpm), (TOKENS_DAY, limits.tpd)):
                if limit is not None:
                    self.limiter.hit(self._item(kind, limit), kind, owner, cost=tokens)
        except StorageError as error:
            self._failed(error)


class MemoryCounters:
    """This process's counters: fixed windows that start at a key's first request (as the
    ``limits`` library's), kept in a dict. ``limits``' own memory storage costs about 10 µs
    a call (key strings, a lock, expiry bookkeeping) and a limited request makes six; this
    makes the whole admission about 3 µs (measured with rpm, tpm and tpd set). Single
    threaded: only the event loop calls it."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], list[float]] = {}  # (owner, kind) -> [start, count]

    def _window(self, owner: str, kind: str, now: float) -> list[float]:
        window = self._windows.get((owner, kind))
        if window is None or now >= window[0] + (DAY if kind == TOKENS_DAY else 60):
            window = self._windows[(owner, kind)] = [now, 0]
        return window

    def _state(self, kind: str, limit: int, window: list[float], now: float) -> Window:
        return Window(limit, int(window[1]), window[0] + (DAY if kind == TOKENS_DAY else 60) - now)

    async def admit(self, owner: str, limits: KeyLimits) -> tuple[bool, Windows]:
        now = time.time()
        windows: Windows = {}
        for kind, limit in ((TOKENS_DAY, limits.tpd), (TOKENS, limits.tpm)):
            if limit is not None:
                windows[kind] = self._state(kind, limit, self._window(owner, kind, now), now)
        if limits.rpm is None:
            return not _tokens_spent(windows), windows
        requests = self._window(owner, REQUESTS, now)
        admitted = not _tokens_spent(windows) and requests[1] < limits.rpm
        if admitted:
            requests[1] += 1
        windows[REQUESTS] = self._state(REQUESTS, limits.rpm, requests, now)
        return admitted, windows

    def spend(self, owner: str, limits: KeyLimits, tokens: int) -> None:
        now = time.time()
        for kind, limit in ((TOKENS, limits.tpm), (TOKENS_DAY, limits.tpd)):
            if limit is not None:
                self._window(owner, kind, now)[1] += tokens


class DatabaseCounters:
    """Counters in the database (storage/rate_counters.py), shared by the replicas on it:
    one round trip per request, in a worker thread; tokens added in the background."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.counters = database.rate_counters
        self._pending: set[asyncio.Task] = set()

    async def admit(self, owner: str, limits: KeyLimits) -> tuple[bool, Windows]:
        now = time.time()
        minute, day = int(now) // 60 * 60, int(now) // DAY * DAY
        token_windows = [(kind, start, limit) for kind, start, limit in ((TOKENS_DAY, day, limits.tpd), (TOKENS, minute, limits.tpm)) if limit is not None]
        read = [(kind, start) for kind, start, _ in token_windows]
        # The tokens' counts are read in the same round trip; a request they refuse is then
        # counted all the same (it is refused either way, the next minute forgets it).
        conditional = [(REQUESTS, minute, 1, limits.rpm)] if limits.rpm is not None else []
        admitted, counts = await self.database.run(self.counters.admit, owner, conditional, read)
        windows = {
            kind: Window(limit, counts.get((kind, start), 0), start + (DAY if kind == TOKENS_DAY else 60) - now)
            for kind, start, limit in token_windows
        }
        if limits.rpm is not None:
            windows[REQUESTS] = Window(limits.rpm, counts[(REQUESTS, minute)], minute + 60 - now)
        return admitted and not _tokens_spent(windows), windows

    def spend(self, owner: str, limits: KeyLimits, tokens: int) -> None:
        now = int(time.time())
        windows = [(kind, start) for kind, start, limit in ((TOKENS, now // 60 * 60, limits.tpm), (TOKENS_DAY, now // DAY * DAY, limits.tpd)) if limit is not None]
        task = asyncio.get_running_loop().create_task(self.database.run(self.counters.add, owner, windows, tokens))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


Counters = MemoryCounters | LimitsCounters | DatabaseCounters


def counters_for(settings: Settings, database: Database) -> Counters:
    uri = settings.rate_limit_storage
    if in_limits(uri):
        return LimitsCounters(uri)
    return DatabaseCounters(database) if uri == "database" or database.dialect == "postgresql" else MemoryCounters()


class RateLimits:
    def __init__(
        self,
        settings: Settings,
        managed_limits: Callable[[str], tuple | None] | None = None,
        counters: Counters | None = None,
    ) -> None:
        """``managed_limits(owner)``: a managed key's (rpm, tpm, tpd), None for any other owner."""
        self.static = KeyLimits(settings.rate_limit_rpm or None, settings.rate_limit_tpm or None, settings.rate_limit_tpd or None)
        self.managed_limits = managed_limits or (lambda owner: None)
        self.counters = counters or MemoryCounters()
        self._spending: dict[str, KeyLimits] = {}  # owner -> its limits, once admitted

    def limits_of(self, principal: Principal) -> KeyLimits:
        if principal.admin or principal.owner == ANONYMOUS:
            return UNLIMITED
        managed = self.managed_limits(principal.key)
        return KeyLimits(*managed) if managed is not None else self.static

    async def admit(self, principal: Principal, limits: KeyLimits) -> tuple[Headers, list[dict]]:
        """Count one request of ``principal`` (held to ``limits``, some set): its rate-limit
        headers and the same windows as a Realtime ``rate_limits.updated`` lists them, or 429
        beyond a limit."""
        owner = principal.key  # keys sharing a name (one static project) share its limits
        self._spending[owner] = limits
        admitted, windows = await self.counters.admit(owner, limits)
        headers: Headers = []
        listed: list[dict] = []
        for kind in (REQUESTS, TOKENS):
            window = windows.get(kind)
            if window is not None:
                remaining = max(0, window.limit - window.used)
                headers += [
                    (f"x-ratelimit-limit-{kind}".encode(), str(window.limit).encode()),
                    (f"x-ratelimit-remaining-{kind}".encode(), str(remaining).encode()),
                    (f"x-ratelimit-reset-{kind}".encode(), reset_text(window.reset).encode()),
                ]
                listed.append({"name": kind, "limit": window.limit, "remaining": remaining, "reset_seconds": round(window.reset, 3)})
        if not admitted:
            raise _refusal(windows, headers)
        return headers, listed

    def spend(self, principal: Principal, model: str, measured: Measured) -> None:
        """Tokens an answer to ``principal`` used (their windows may go past their limits).
        A batch line's are not: its key's limits are the interactive ones (OpenAI keeps batch
        limits apart; ``project_limits.py`` holds lines to a project's batch tokens)."""
        if background.get():
            return
        owner, tokens = principal.key, measured.tokens
        limits = self._spending.get(owner)
        if limits is not None and tokens > 0 and (limits.tpm is not None or limits.tpd is not None):
            self.counters.spend(owner, limits, tokens)


def _refusal(windows: Windows, headers: Headers) -> OpenAIError:
    """The 429 for the first spent limit: the day's tokens, the minute's, then requests (a
    refused request has one: ``Counters.admit``)."""
    kind, window = next(
        (kind, window) for kind in (TOKENS_DAY, TOKENS, REQUESTS) if (window := windows.get(kind)) is not None and window.spent
    )
    wait = max(1, math.ceil(window.reset))
    kind_name = REQUESTS if kind == REQUESTS else TOKENS
    per = "day" if kind == TOKENS_DAY else "min"
    return errors.rate_limited(
        kind_name, window.limit, window.used, wait, {name.decode(): value.decode() for name, value in headers}, per=per
    )


class LimitedAuthenticator(Authenticator):
    """The ``Authenticator`` whose callers are also held to their key's rate limits, and
    first to their project's hard spend limit (``quota``: serving/metering/meter.py)."""

    def __init__(
        self, authenticator: Authenticator, limits: RateLimits, quota: Callable[[Principal], Awaitable[None]] | None = None
    ) -> None:
        super().__init__(authenticator.keyring, authenticator.managed, authenticator.projects, authenticator.refused_admin)
        self.limits = limits
        self.quota = quota

    async def authenticate(self, authorization: str | None) -> Principal:
        return await self.admitted(await super().authenticate(authorization))

    async def admitted(self, principal: Principal) -> Principal:
        if self.quota is not None:
            await self.quota(principal)
        limits = self.limits.limits_of(principal)
        if limits.any:  # most keys have none: no coroutine, no counting
            record = context.record()
            record.headers, record.rate_limits = await self.limits.admit(principal, limits)
        return principal
