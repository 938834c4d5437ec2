"""The ``limits`` storage that ``rate_limit_storage`` names (storage/limits_storage.py)."""

from __future__ import annotations

import pytest
from limits.storage import Storage

from llm_backend.storage.limits_storage import limits_storage


def test_a_synchronous_storage_is_built_for_its_uri():
    assert isinstance(limits_storage("memory://"), Storage)


def test_an_async_storage_is_refused_naming_the_synchronous_one():
    # The counters and the readiness probe call their storage synchronously: an async one
    # made their limiter fail a bare assertion when the app was built.
    with pytest.raises(ValueError, match=r"async\+memory:// is an async storage.*\(memory://\)"):
        limits_storage("async+memory://")
