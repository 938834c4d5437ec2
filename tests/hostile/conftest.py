"""The hostile suite (issue #33): each case a real request to a live server, measured by the
peak RSS growth of every process of the service (``tests/support/rss.py``) against its budget.

``measured(live)`` is a context manager yielding the ``Growth``; it asserts the budget
(400 MiB per process over its size before the request) when the block ends, and that the
service still answers ``/health``.
"""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import pytest

from tests.support.rss import GROWTH_BUDGET, watch


@pytest.fixture
def measured():
    @contextmanager
    def measure(live, budget: int = GROWTH_BUDGET):
        with watch(live.process.pid) as growth:
            yield growth
        growth.assert_within(budget)
        assert httpx.get(live.base_url + "/health", timeout=10).status_code == 200

    return measure
