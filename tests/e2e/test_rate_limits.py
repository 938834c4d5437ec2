"""Per-key rate limits (http/key_limits.py): OpenAI's x-ratelimit-* headers on every answer,
429 rate_limit_exceeded with retry-after beyond requests or tokens per minute."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS, keyed_server, sdk
from tests.support.server import LiveServer

RPM, TPM = 4, 30
KEYS = ["sk-rl-headers", "sk-rl-requests", "sk-rl-tokens"]
ADMIN = "sk-rl-admin"
USER = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> LiveServer:
    env = {"LLM_BACKEND_RATE_LIMIT_RPM": str(RPM), "LLM_BACKEND_RATE_LIMIT_TPM": str(TPM)}
    with keyed_server(tmp_path_factory.mktemp("limited"), KEYS, [ADMIN], env=env) as live:
        yield live


def models(live: LiveServer, key: str) -> httpx.Response:
    return httpx.get(live.api + "/models", headers={"Authorization": f"Bearer {key}"}, timeout=30, verify=TLS)


def test_an_answer_to_a_limited_key_carries_openais_rate_limit_headers(limited):
    headers = models(limited, KEYS[0]).headers
    assert headers["x-ratelimit-limit-requests"] == str(RPM)
    assert headers["x-ratelimit-remaining-requests"] == str(RPM - 1)
    assert headers["x-ratelimit-reset-requests"] in ("59s", "1m0s")
    assert headers["x-ratelimit-limit-tokens"] == str(TPM)
    assert headers["x-ratelimit-remaining-tokens"] == str(TPM)


def test_requests_beyond_the_limit_are_refused_with_429_and_retry_after(limited):
    statuses = [models(limited, KEYS[1]).status_code for _ in range(RPM)]
    assert statuses == [200] * RPM
    client = sdk(limited, api_key=KEYS[1])
    with pytest.raises(openai.RateLimitError) as raised:
        client.models.list()
    error = raised.value
    assert error.code == "rate_limit_exceeded" and error.type == "requests"
    assert f"Limit {RPM}, Used {RPM}" in error.message
    assert 1 <= int(error.response.headers["retry-after"]) <= 60
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_key_whose_tokens_are_spent_is_refused_until_its_window_resets(limited):
    client = sdk(limited, api_key=KEYS[2])
    # USER's prompt alone is 36 tokens (SmolLM2's default system prompt): over TPM with 8 more.
    answer = client.chat.completions.with_raw_response.create(model=MODEL, messages=USER, max_tokens=8)
    assert answer.headers["x-ratelimit-remaining-tokens"] == str(TPM)
    assert answer.parse().usage.total_tokens > TPM
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
    assert raised.value.type == "tokens" and raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["x-ratelimit-remaining-tokens"] == "0"


def test_admin_keys_are_not_limited(limited):
    answers = [models(limited, ADMIN) for _ in range(RPM + 2)]
    assert [answer.status_code for answer in answers] == [200] * (RPM + 2)
    assert "x-ratelimit-limit-requests" not in answers[-1].headers


def test_a_managed_key_is_held_to_the_rpm_it_was_created_with(limited):
    env = {**os.environ, **limited.env}
    created = subprocess.run(
        [sys.executable, "-m", "llm_backend", "keys", "create", "--name", "ci", "--rpm", "1", "--tpm", "1000"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    first, second = models(limited, key), models(limited, key)
    assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    assert second.status_code == 429 and second.json()["error"]["code"] == "rate_limit_exceeded"
    listed = subprocess.run(
        [sys.executable, "-m", "llm_backend", "keys", "list"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert "1 rpm\t1000 tpm" in listed.stdout


def test_the_sdk_waits_for_retry_after_and_succeeds_once_the_windows_reset(limited):
    """About a minute of waiting (one window), no CPU: the SDK's own retry, observed."""
    env = {**os.environ, **limited.env}
    created = subprocess.run(
        [sys.executable, "-m", "llm_backend", "keys", "create", "--name", "retry", "--rpm", "1", "--tpm", "10"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    body = {"model": MODEL, "messages": USER, "max_tokens": 2}
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.post(limited.api + "/chat/completions", json=body, headers=headers, timeout=60, verify=TLS).status_code == 200
    refused = httpx.post(limited.api + "/chat/completions", json=body, headers=headers, timeout=60, verify=TLS)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "tokens"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    retry_after = int(refused.headers["retry-after"])
    started = time.monotonic()
    answer = sdk(limited, api_key=key, max_retries=1).chat.completions.create(**body)
    assert answer.choices[0].message.content is not None
    assert time.monotonic() - started >= retry_after - 2
