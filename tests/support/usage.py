"""Today's usage as OpenAI's usage operations answer it, for suites that check what their
requests added (the session server has no keys: any key is its admin)."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support.clients import admin_sdk
from tests.support.server import LiveServer


def today_usage(live: LiveServer, family: str, **filters) -> dict[str, float]:
    """Today's totals of one usage operation (``audio_speeches``, ``file_search_calls``...),
    with its filters (``models=[...]``)."""
    client = admin_sdk(live, "anything")
    page = getattr(client.admin.organization.usage, family)(start_time=int(time.time()) // 86400 * 86400, limit=1, **filters)
    totals: dict[str, float] = {}
    for bucket in page.data:
        for result in bucket.results:
            for name, value in result.model_dump().items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    totals[name] = totals.get(name, 0) + value
    return totals


def added(
    live: LiveServer, family: str, before: dict[str, float], done: Callable[[dict], bool], seconds: float = 15, **filters
) -> dict:
    """What was added to ``family``'s totals since ``before``, once ``done`` says it is all
    there (usage is written every few seconds)."""
    deadline = time.monotonic() + seconds
    while True:
        now = today_usage(live, family, **filters)
        delta = {name: value - before.get(name, 0) for name, value in now.items()}
        if done(delta) or time.monotonic() > deadline:
            return delta
        time.sleep(0.25)


def project_completions(org, project_id: str, done: Callable[[list], bool]) -> list:
    """Today's completions usage results of one project (``org``: an Admin SDK client's
    ``admin.organization``), once ``done`` says they are all there, or after 10 s (usage is
    written every 0.5 s in these suites' servers)."""
    today = int(time.time()) // 86400 * 86400
    for _ in range(50):
        results = [result for bucket in org.usage.completions(start_time=today, project_ids=[project_id], limit=1).data
                   for result in bucket.results]
        if done(results):
            break
        time.sleep(0.2)
    return results
