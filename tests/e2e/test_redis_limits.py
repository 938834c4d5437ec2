"""Rate limits counted in Redis (``rate_limit_storage: redis://...``, http/key_limits.py's
``LimitsCounters``): two replicas on one Redis admit exactly a key's limit between them, one
request after another and in a burst at both at once (docs/SCALING.md: the high-rate option)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.clients import TLS, keyed_server
from tests.support.redis_server import RedisServer
from tests.support.server import LiveServer

RPM = 5
ALTERNATING = "sk-redis-alternating"  # unnamed static keys: a counter each
BURSTS = [f"sk-redis-burst-{i}" for i in range(4)]  # a race shows in some bursts, not in each
GATEWAY = {"LLM_BACKEND_LOCAL_MODELS": "false", "LLM_BACKEND_RATE_LIMIT_RPM": str(RPM)}


@pytest.fixture(scope="module")
def redis_url():
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, redis_url) -> tuple[LiveServer, LiveServer]:
    """Two pure gateways, each on its own SQLite: Redis is all they share."""
    env = {**GATEWAY, "LLM_BACKEND_RATE_LIMIT_STORAGE": redis_url}
    with keyed_server(tmp_path_factory.mktemp("first"), [ALTERNATING, *BURSTS], env=env) as first, \
            keyed_server(tmp_path_factory.mktemp("second"), [ALTERNATING, *BURSTS], env=env) as second:
        yield first, second


def models(live: LiveServer, key: str, http: httpx.Client | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if http is not None:
        return http.get(live.api + "/models", headers=headers, timeout=30)
    return httpx.get(live.api + "/models", headers=headers, timeout=30, verify=TLS)


def test_two_replicas_on_redis_count_a_keys_requests_together(replicas):
    first, second = replicas
    answers = [models(first if i % 2 == 0 else second, ALTERNATING) for i in range(RPM)]
    assert [answer.status_code for answer in answers] == [200] * RPM
    assert [answer.headers["x-ratelimit-remaining-requests"] for answer in answers] == [str(RPM - 1 - i) for i in range(RPM)]
    for live in (first, second):
        refused = models(live, ALTERNATING)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert f"Limit {RPM}, Used {RPM}" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_a_burst_at_both_replicas_at_once_is_admitted_exactly_up_to_the_limit(replicas):
    first, second = replicas
    with httpx.Client(verify=TLS) as one, httpx.Client(verify=TLS) as other, ThreadPoolExecutor(16) as pool:
        for key in BURSTS:
            answers = list(pool.map(
                lambda i: models(first, key, one) if i % 2 else models(second, key, other), range(8 * RPM)
            ))
            codes = [answer.status_code for answer in answers]
            assert (codes.count(200), codes.count(429)) == (RPM, 7 * RPM), key
