"""The rate limits' counting and refusals (http/key_limits.py), in process: the in-memory
counters and the ``limits`` library's, both held to the same behaviour."""

from __future__ import annotations

import asyncio

import pytest

from llm_backend.auth import Principal
from llm_backend.errors import OpenAIError
from llm_backend.http.key_limits import KeyLimits, LimitsCounters, MemoryCounters, RateLimits
from llm_backend.settings import Settings
from llm_backend.storage.usage import Measured

COUNTERS = {"memory": MemoryCounters, "limits": lambda: LimitsCounters("memory://")}
KEY = Principal("key-0")
MODEL = "smollm2"


@pytest.fixture(params=sorted(COUNTERS))
def limits(request) -> RateLimits:
    return RateLimits(Settings(), lambda owner: None, COUNTERS[request.param]())


def admit(limits: RateLimits, key_limits: KeyLimits) -> list[tuple[bytes, bytes]]:
    headers, _ = asyncio.run(limits.admit(KEY, key_limits))
    return headers


def test_a_key_gets_exactly_its_requests_per_minute(limits):
    rpm = KeyLimits(rpm=3)
    remaining = [dict(admit(limits, rpm))[b"x-ratelimit-remaining-requests"] for _ in range(3)]
    assert remaining == [b"2", b"1", b"0"]
    with pytest.raises(OpenAIError) as raised:
        admit(limits, rpm)
    assert raised.value.status == 429 and raised.value.type == "requests"
    assert "requests per min (RPM): Limit 3, Used 3, Requested 1." in raised.value.message
    with pytest.raises(OpenAIError) as again:  # a refused request is not counted
        admit(limits, rpm)
    assert "Used 3" in again.value.message
    assert 1 <= int(raised.value.headers["retry-after"]) <= 60


def test_spent_tokens_refuse_the_next_request_not_the_one_that_spent_them(limits):
    tpm = KeyLimits(tpm=10)
    admit(limits, tpm)
    limits.spend(KEY, MODEL, Measured("completions", 20, 0, 5))
    with pytest.raises(OpenAIError) as raised:
        admit(limits, tpm)
    assert raised.value.type == "tokens" and "tokens per min (TPM): Limit 10, Used 25" in raised.value.message


def test_a_spent_daily_budget_is_refused_in_openais_words_until_its_day_window_ends(limits):
    tpd = KeyLimits(tpm=1000, tpd=20)
    admit(limits, tpd)
    limits.spend(KEY, MODEL, Measured("completions", 20, 0, 10))
    with pytest.raises(OpenAIError) as raised:
        admit(limits, tpd)
    error = raised.value
    assert error.code == "rate_limit_exceeded" and error.type == "tokens"
    assert "on tokens per day (TPD): Limit 20, Used 30, Requested 1." in error.message
    assert 60 < int(error.headers["retry-after"]) <= 86400


def test_admin_keys_and_keys_without_limits_are_not_counted():
    limits = RateLimits(Settings(rate_limit_rpm=1), lambda owner: None)
    assert not limits.limits_of(Principal("admin-0", admin=True)).any
    assert limits.limits_of(Principal("key-0")) == KeyLimits(rpm=1)
