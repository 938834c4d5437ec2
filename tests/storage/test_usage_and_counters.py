"""The usage accounting's buffer and totals, and the shared rate-limit counters, on SQLite and
PostgreSQL (storage/usage.py, storage/rate_counters.py)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from llm_backend.storage import Database


def test_recorded_usage_is_written_in_one_flush_and_summed_per_bucket_and_group(database):
    usage = database.usage
    usage.record("completions", "key-0", "m1", 10, 2, cached_tokens=4)
    usage.record("completions", "key-0", "m1", 5, 1)
    usage.record("completions", "key-1", "m2", 7, 3)
    usage.record("embeddings", "key-1", "m2", 9, 0)
    assert asyncio.run(usage.flush()) == 3  # one row per minute, operation, key and model
    usage.record("completions", "key-0", "m1", 1, 1)  # a second flush of the same minute
    assert asyncio.run(usage.flush()) == 1
    now = int(time.time())
    by_key = usage.totals(now - 120, now + 1, operation="completions", width=3600, group_by=("api_key_id",))
    assert {(t.group["api_key_id"], t.requests, t.input_tokens, t.cached_tokens, t.output_tokens) for t in by_key} == {
        ("key-0", 3, 16, 4, 4),
        ("key-1", 1, 7, 0, 3),
    }
    assert {t.start for t in by_key} == {now // 3600 * 3600}
    overall = usage.totals(now - 120, now + 1, operation="embeddings")
    assert [(t.requests, t.input_tokens) for t in overall] == [(1, 9)]
    assert usage.totals(now + 120, now + 240) == []


def test_a_requests_window_admits_exactly_its_limit_under_concurrency(database: Database):
    counters = database.rate_counters
    window = int(time.time()) // 60 * 60

    def admit(_):
        return counters.admit("key-0", [("requests", window, 1, 5)], [])[0]

    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(admit, range(20)))
    assert admitted.count(True) == 5


def test_windows_admitted_together_count_all_or_none(database: Database):
    """A project's requests per minute and per day (http/project_limits.py) are one
    admission: a request the day refuses is not counted in the minute either."""
    counters = database.rate_counters
    minute, day = int(time.time()) // 60 * 60, int(time.time()) // 86400 * 86400

    def admit(_):
        return counters.admit("p:x", [("requests", minute, 1, 5), ("requests_day", day, 1, 3)], [])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(admit, range(12)))
    assert [admitted for admitted, _ in results].count(True) == 3
    assert counters.admit("p:x", [], [("requests", minute), ("requests_day", day)])[1] == {
        ("requests", minute): 3, ("requests_day", day): 3,
    }


def test_tokens_added_to_a_window_are_read_back(database: Database):
    counters = database.rate_counters
    minute, day = int(time.time()) // 60 * 60, int(time.time()) // 86400 * 86400
    counters.add("key-0", [("tokens", minute), ("tokens_day", day)], 30)
    counters.add("key-0", [("tokens", minute)], 12)
    admitted, counts = counters.admit("key-0", [], [("tokens", minute), ("tokens_day", day)])
    assert admitted and counts == {("tokens", minute): 42, ("tokens_day", day): 30}


def test_what_gathered_since_the_last_flush_is_written_at_shutdown(database: Database):
    usage = database.usage
    usage.flush_interval = 3600  # no periodic flush during the test

    async def serve_and_stop() -> None:
        usage.start()
        usage.record("completions", "key-0", "m1", 3, 1)
        await usage.stop()

    asyncio.run(serve_and_stop())
    now = int(time.time())
    assert [(t.requests, t.input_tokens, t.output_tokens) for t in usage.totals(now - 120, now + 1)] == [(1, 3, 1)]
