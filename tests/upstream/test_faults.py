"""Upstream faults a real upstream cannot produce on demand - hanging, rate limiting - come
from small loopback fakes (tests/support/fake_upstreams.py); said so in each test."""

from __future__ import annotations

import openai
import pytest

from tests.support.fake_upstreams import HangingUpstream, RateLimitedUpstream
from tests.support.server import free_port
from tests.upstream.conftest import sdk

MESSAGES = [{"role": "user", "content": "hi"}]
SECRET = "sk-fault-upstream-secret-93be21"


def gateway_to(start_server, base_url: str, **settings):
    lines = "\n".join(f"{key}: {value}" for key, value in settings.items())
    config = f"""
local_models: false
{lines}
upstreams:
  - name: fault
    base_url: {base_url}
    api_key: {SECRET}
"""
    return start_server(config=config)


def test_hanging_upstream_is_504_within_the_timeout(start_server):
    # Fake: a loopback socket that accepts and never answers (a real upstream cannot hang on demand).
    with HangingUpstream() as hanging:
        gateway = gateway_to(start_server, hanging.api, upstream_timeout=1)
        with pytest.raises(openai.APIStatusError) as raised:
            sdk(gateway).chat.completions.create(model="any", messages=MESSAGES)
    assert raised.value.status_code == 504
    assert raised.value.code == "upstream_timeout"
    assert "1 seconds" in raised.value.message


def test_timeout_and_unreachable_errors_never_show_the_upstream_key(start_server):
    # Fake for the hang, as above; the unreachable one is a port nothing listens on.
    with HangingUpstream() as hanging:
        hung = gateway_to(start_server, hanging.api, upstream_timeout=1)
        with pytest.raises(openai.APIStatusError) as timed_out:
            sdk(hung).chat.completions.create(model="any", messages=MESSAGES)
    down = gateway_to(start_server, f"http://127.0.0.1:{free_port()}/v1", upstream_max_retries=1)
    with pytest.raises(openai.APIStatusError) as unreachable:
        sdk(down).chat.completions.create(model="any", messages=MESSAGES)
    assert (timed_out.value.status_code, unreachable.value.status_code) == (504, 502)
    for error, live in ((timed_out, hung), (unreachable, down)):
        assert SECRET not in error.value.response.text
        assert SECRET not in live.log()


def test_429_is_retried_after_the_retry_after_delay(start_server):
    # Fake: a loopback upstream that answers 429 (retry-after: 2) once, then 200.
    with RateLimitedUpstream(limited=1, retry_after="2") as limited:
        gateway = gateway_to(start_server, limited.api)
        completion = sdk(gateway).chat.completions.create(model="flaky-model", messages=MESSAGES)
    assert completion.choices[0].message.content == "ok"
    assert len(limited.arrivals) == 2
    # Our own backoff would have waited at most 0.5 s: the 2 s came from retry-after.
    assert limited.arrivals[1] - limited.arrivals[0] >= 2


def test_429_beyond_the_retry_budget_is_relayed(start_server):
    # Fake, as above, asking for a wait longer than the gateway's retry budget.
    with RateLimitedUpstream(limited=5, retry_after="60") as limited:
        gateway = gateway_to(start_server, limited.api, upstream_retry_budget=5)
        with pytest.raises(openai.RateLimitError) as raised:
            sdk(gateway).chat.completions.create(model="flaky-model", messages=MESSAGES)
    assert len(limited.arrivals) == 1
    assert raised.value.response.headers["retry-after"] == "60"


def test_ratelimit_headers_and_openai_headers_are_passed_on(start_server):
    # Fake, as above (the real upstream sends no x-ratelimit-* headers).
    with RateLimitedUpstream(limited=0) as limited:
        gateway = gateway_to(start_server, limited.api)
        client = openai.OpenAI(
            base_url=gateway.api, api_key="client-key", max_retries=0, organization="org-42", project="proj-7"
        )
        raw = client.chat.completions.with_raw_response.create(model="flaky-model", messages=MESSAGES)
    assert raw.headers["x-ratelimit-remaining-requests"] == "499"
    assert limited.headers[0]["openai-organization"] == "org-42"
    assert limited.headers[0]["openai-project"] == "proj-7"
    assert limited.headers[0]["authorization"] == f"Bearer {SECRET}"
