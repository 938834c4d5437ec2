"""Rate limits counted in Redis, and Redis stops (issue #56, item 6): a limited key's request
fails closed and visibly - 503 in OpenAI's error shape (Anthropic's on the Messages API)
with ``retry-after``, never let in uncounted, nor an unhandled 500 - and ``/ready`` fails
until Redis answers again, so that a load balancer sends elsewhere; once it is back, both
are 200 again. A real fault: Debian's ``redis-server``, stopped and started on its port."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.clients import TLS, keyed_server
from tests.support.redis_server import RedisServer

KEY = "sk-redis-down-0f3a"
ADMIN = "sk-admin-redis-down-77c2"
RETRY_AFTER = 2  # http/key_limits.RETRY_AFTER: how long a failed storage is left alone


@pytest.fixture(scope="module")
def redis():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, redis):
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "LLM_BACKEND_RATE_LIMIT_RPM": "1000", "LLM_BACKEND_RATE_LIMIT_STORAGE": redis.url}
    with keyed_server(tmp_path_factory.mktemp("redis-down"), [KEY], [f"ops={ADMIN}"], env=env) as live:
        yield live


def models(live, key: str = KEY, **headers: str) -> httpx.Response:
    return httpx.get(live.api + "/models", headers={"authorization": f"Bearer {key}", **headers}, timeout=30, verify=TLS)


def ready(live) -> httpx.Response:
    return httpx.get(live.base_url + "/ready", timeout=30, verify=TLS)


def started_again(redis: RedisServer) -> None:
    redis.root.mkdir(exist_ok=True)  # stop() took its folder with it
    redis.start()


def back(live) -> bool:
    """Whether the gateway, Redis started again, is ready and admits the key (within 15 s)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if ready(live).status_code == 200 and models(live).status_code == 200:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def stopped(redis, gateway):
    assert models(gateway).status_code == 200 and ready(gateway).status_code == 200
    redis.stop()
    yield
    started_again(redis)
    assert back(gateway)


def test_a_limited_key_is_answered_503_in_openais_shape_with_retry_after(gateway, stopped):
    assert models(gateway, ADMIN).status_code == 200  # a key without limits has nothing to count
    answer = models(gateway)
    assert answer.status_code == 503
    assert answer.json()["error"] == {
        "message": f"The rate limits of this key cannot be checked right now. Please try again in {RETRY_AFTER}s.",
        "type": "server_error", "param": None, "code": "service_unavailable",
    }
    assert answer.headers["retry-after"] == str(RETRY_AFTER)
    assert str(gateway.port) not in answer.text and "redis" not in answer.text.lower()


def test_an_anthropic_client_is_answered_503_in_anthropics_shape(gateway, stopped):
    answer = models(gateway, **{"anthropic-version": "2023-06-01"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == str(RETRY_AFTER)
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "overloaded_error"


def test_ready_fails_while_redis_is_stopped(gateway, stopped):
    answer = ready(gateway)
    assert answer.status_code == 503
    assert answer.json()["checks"]["rate_limits"] == {"ok": False, "detail": "unreachable"}
    assert answer.json()["checks"]["database"]["ok"]


def test_once_redis_is_back_the_gateway_is_ready_and_admits_again(gateway, redis):
    redis.stop()
    assert models(gateway).status_code == 503 and ready(gateway).status_code == 503
    started_again(redis)
    assert back(gateway)
    assert ready(gateway).json()["checks"]["rate_limits"] == {"ok": True, "detail": "reachable"}
