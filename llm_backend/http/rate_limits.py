"""Per-key rate limits: requests and tokens per minute, answered as OpenAI answers them.

Each key has a requests-per-minute and a tokens-per-minute limit (a managed key its own,
set by ``llm-backend keys create --rpm N --tpm N``; the static API keys the settings'
``rate_limit_rpm`` / ``rate_limit_tpm``; admin keys and the keyless mode none). Counted
with the ``limits`` library in fixed one-minute windows that start at a key's first request.

- A request is admitted when its key checks out: ``LimitedAuthenticator`` wraps the one
  ``Authenticator`` both lanes (fast lane, Connexion's security) ask, so there is one place.
  Over its requests, or with its window's tokens spent, it is refused with 429
  ``rate_limit_exceeded`` and ``retry-after`` (the SDKs wait that long and retry).
- Tokens are spent when an answer reports them (``Metrics.count_tokens``): a request is not
  refused for the tokens it is about to use, the next one is, once the window's are spent.
- Every answer to a limited key carries OpenAI's ``x-ratelimit-{limit,remaining,reset}-
  {requests,tokens}`` headers (added by ``RequestContext`` from the request's record).

The counters live in the storage ``rate_limit_storage`` names: ``memory://`` (default) is
this process's; a shared one (``redis://...``, any ``limits`` storage) makes replicas count
together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from ..auth import ANONYMOUS, Authenticator, Principal
from .. import errors
from ..errors import OpenAIError
from ..settings import Settings
from . import context

Limits = tuple[int | None, int | None]  # requests, tokens per minute; None: unlimited
Headers = list[tuple[bytes, bytes]]


def reset_text(seconds: float) -> str:
    """A duration as OpenAI writes its reset headers: ``120ms``, ``7s``, ``1m0s``."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60}s"


def rate_limited(kind: str, limit: int, used: int, retry_after: float, headers: Headers) -> OpenAIError:
    wait = max(1, math.ceil(retry_after))
    return errors.rate_limited(kind, limit, used, wait, {name.decode(): value.decode() for name, value in headers})


class RateLimits:
    def __init__(self, settings: Settings, managed_limits: Callable[[str], Limits | None] | None = None) -> None:
        """``managed_limits(owner)``: a managed key's limits, None for any other owner."""
        self.static: Limits = (settings.rate_limit_rpm or None, settings.rate_limit_tpm or None)
        self.managed_limits = managed_limits or (lambda owner: None)
        self.limiter = FixedWindowRateLimiter(storage_from_string(settings.rate_limit_storage))
        self._items: dict[int, RateLimitItem] = {}
        self._spending: dict[str, int] = {}  # owner -> its tokens per minute, once admitted

    def _item(self, amount: int) -> RateLimitItem:
        item = self._items.get(amount)
        if item is None:
            item = self._items[amount] = RateLimitItemPerMinute(amount)
        return item

    def limits_of(self, principal: Principal) -> Limits:
        if principal.admin or principal.owner == ANONYMOUS:
            return (None, None)
        managed = self.managed_limits(principal.owner)
        return managed if managed is not None else self.static

    def _headers(self, kind: str, limit: int, owner: str) -> tuple[Headers, int, float]:
        stats = self.limiter.get_window_stats(self._item(limit), kind, owner)
        reset = max(0.0, stats.reset_time - time.time())
        headers = [
            (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
            (f"x-ratelimit-remaining-{kind}".encode(), str(stats.remaining).encode()),
            (f"x-ratelimit-reset-{kind}".encode(), reset_text(reset).encode()),
        ]
        return headers, stats.remaining, reset

    def admit(self, principal: Principal) -> Headers:
        """Count one request of ``principal``: its rate-limit headers, or 429 beyond a limit."""
        rpm, tpm = self.limits_of(principal)
        owner = principal.owner
        headers: Headers = []
        if tpm is not None:
            self._spending[owner] = tpm
            token_headers, remaining, reset = self._headers("tokens", tpm, owner)
            headers += token_headers
            if remaining <= 0:
                if rpm is not None:
                    headers = self._headers("requests", rpm, owner)[0] + headers
                raise rate_limited("tokens", tpm, tpm - remaining, reset, headers)
        if rpm is not None:
            item = self._item(rpm)
            if not self.limiter.test(item, "requests", owner):
                request_headers, remaining, reset = self._headers("requests", rpm, owner)
                raise rate_limited("requests", rpm, rpm - remaining, reset, request_headers + headers)
            self.limiter.hit(item, "requests", owner)
            headers = self._headers("requests", rpm, owner)[0] + headers
        return headers

    def spend(self, owner: str, tokens: int) -> None:
        """Tokens an answer to ``owner`` used (their window may go past its limit)."""
        tpm = self._spending.get(owner)
        if tpm is not None and tokens > 0:
            self.limiter.hit(self._item(tpm), "tokens", owner, cost=tokens)


class LimitedAuthenticator(Authenticator):
    """The ``Authenticator`` whose callers are also held to their key's rate limits."""

    def __init__(self, authenticator: Authenticator, limits: RateLimits) -> None:
        super().__init__(authenticator.keyring, authenticator.managed)
        self.limits = limits

    async def authenticate(self, authorization: str | None) -> Principal:
        principal = await super().authenticate(authorization)
        context.record().headers = self.limits.admit(principal)
        return principal
