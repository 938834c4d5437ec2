"""When a batch line refused for a passing reason is tried again (serving/batches/runner.py):
429 and 5xx (a model loading, an engine restarting, an upstream's limit) are retried after a
doubling delay or the answer's retry-after, up to ``MAX_ATTEMPTS``; a refusal that will not
pass soon (a spend limit's ``insufficient_quota``, a limit that resets past
``MAX_RETRY_AFTER``) is the line's answer at once: retrying it only held the batch. So is an
upstream's answer this service cannot read (``upstream_unreadable``: past the read limit, or
not what its document says): the upstream answered, and asking again pays again for the same."""

from __future__ import annotations

from ...json.types import Json


RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_ATTEMPTS = 5
RETRY_DELAY = 2.0  # seconds, doubling per attempt
FINAL_CODES = frozenset({"insufficient_quota", "upstream_unreadable"})
MAX_RETRY_AFTER = 120.0  # the longest retry-after a line waits for (a minute's limit, not a day's)


def retry_delay(status: int, answer: Json, retry_after: float | None, attempt: int) -> float | None:
    """Seconds before a line's attempt ``attempt`` is tried again, or None: its answer is final."""
    if status not in RETRIED_STATUSES or attempt >= MAX_ATTEMPTS:
        return None
    error = answer.get("error")
    final = isinstance(error, dict) and error.get("code") in FINAL_CODES
    if final or (retry_after or 0) > MAX_RETRY_AFTER:
        return None
    return max(RETRY_DELAY * 2 ** (attempt - 1), retry_after or 0)
