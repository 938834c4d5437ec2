"""Rate limits counted in PostgreSQL (storage/rate_counters.py): two live servers on one
database share a key's limits; a daily token budget; ``keys update``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import MODEL
from tests.support.admin import same_minute
from tests.support.clients import TLS, keyed_server
from tests.support.server import LiveServer

STATIC = "sk-shared-static"  # keys are enforced once one exists; the managed ones are created below
USER = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def database_url(new_database_url):
    """A new database of the session's cluster (a cluster of the module's own cost an initdb)."""
    return new_database_url("postgresql")


@pytest.fixture(scope="module")
def first(tmp_path_factory, database_url) -> LiveServer:
    """The server with the model."""
    with keyed_server(tmp_path_factory.mktemp("first"), [STATIC], env={"DATABASE_URL": database_url}) as live:
        yield live


@pytest.fixture(scope="module")
def second(tmp_path_factory, database_url, first) -> LiveServer:
    """A second replica on the same database (a pure gateway: no model needed to count)."""
    env = {"DATABASE_URL": database_url, "LLM_BACKEND_LOCAL_MODELS": "false"}
    with keyed_server(tmp_path_factory.mktemp("second"), [STATIC], env=env) as live:
        yield live


def cli(live: LiveServer, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "llm_backend", *args],
        env={**os.environ, **live.env}, capture_output=True, text=True, timeout=60, check=True,
    ).stdout


def create_key(live: LiveServer, name: str, *limits: str) -> str:
    return cli(live, "keys", "create", "--name", name, *limits).strip().splitlines()[-1]


def models(live: LiveServer, key: str) -> httpx.Response:
    return httpx.get(live.api + "/models", headers={"Authorization": f"Bearer {key}"}, timeout=30, verify=TLS)


def test_two_servers_on_one_postgresql_share_a_keys_requests_per_minute(first, second):
    key = create_key(first, "shared-rpm", "--rpm", "3")
    same_minute()
    answers = [models(first, key), models(second, key), models(first, key)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.headers["x-ratelimit-remaining-requests"] for answer in answers] == ["2", "1", "0"]
    refused = models(second, key)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_a_daily_token_budget_spent_on_one_server_refuses_the_key_on_the_other_until_the_next_utc_day(first, second):
    key = create_key(first, "shared-tpd", "--tpd", "20")
    answer = httpx.post(
        first.api + "/chat/completions", json={"model": MODEL, "messages": USER, "max_tokens": 8},
        headers={"Authorization": f"Bearer {key}"}, timeout=120, verify=TLS,
    )
    assert answer.status_code == 200 and answer.json()["usage"]["total_tokens"] > 20
    refused = models(second, key)
    for _ in range(20):  # the tokens are added in the background, just after the answer
        if refused.status_code == 429:
            break
        time.sleep(0.1)
        refused = models(second, key)
    error = refused.json()["error"]
    assert refused.status_code == 429 and error["code"] == "rate_limit_exceeded" and error["type"] == "tokens"
    assert "tokens per day (TPD): Limit 20" in error["message"]
    to_midnight = 86400 - time.time() % 86400
    assert abs(int(refused.headers["retry-after"]) - to_midnight) <= 3


def test_keys_update_changes_a_keys_limits_at_its_next_request(first, second):
    key = create_key(first, "updated", "--rpm", "100")
    assert models(second, key).headers["x-ratelimit-limit-requests"] == "100"
    printed = cli(first, "keys", "update", "updated", "--rpm", "7", "--tpm", "500", "--tpd", "9000")
    assert "rpm 7, tpm 500, tpd 9000" in printed
    headers = models(second, key).headers
    assert headers["x-ratelimit-limit-requests"] == "7" and headers["x-ratelimit-limit-tokens"] == "500"
    assert "7 rpm\t500 tpm\t9000 tpd" in cli(first, "keys", "list")
