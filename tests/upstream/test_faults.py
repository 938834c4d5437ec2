"""Upstream faults a real upstream cannot produce on demand - hanging, rate limiting - come
from small loopback fakes (tests/support/fake_upstreams.py); said so in each test. The
unreachable upstream is real: a loopback port nothing listens on."""

from __future__ import annotations

import openai
import pytest

from tests.support.fake_upstreams import HangingUpstream, RateLimitedUpstream
from tests.support.server import LiveServer, free_port
from tests.upstream.conftest import sdk

MESSAGES = [{"role": "user", "content": "hi"}]
SECRET = "sk-fault-upstream-secret-93be21"


@pytest.fixture(scope="module")
def hanging():
    with HangingUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def limited():
    with RateLimitedUpstream() as fake:
        yield fake


# Short, so the hanging upstream's 504 comes quickly; not 1 s: the fake upstreams are threads
# of the busy test process, and one once took longer than that to answer a chat.
TIMEOUT = 3


@pytest.fixture(scope="module")
def faults(hanging, limited, tmp_path_factory) -> LiveServer:
    """A gateway with one upstream per fault: `hang-*`, `down-*`, `flaky-*`; `cdn-*` is the
    flaky one by host name (HTTP clients keep no cookies for bare IP addresses)."""
    upstreams = {
        "hang": hanging.api,
        "down": f"http://127.0.0.1:{free_port()}/v1",
        "flaky": limited.api,
        "cdn": limited.api.replace("127.0.0.1", "localhost"),
    }
    config = f"local_models: false\nupstream_timeout: {TIMEOUT}\nupstream_retry_budget: 5\nupstreams:\n" + "".join(
        f"  - {{name: {name}, base_url: '{url}', api_key: {SECRET}, models: ['{name}-*']}}\n"
        for name, url in upstreams.items()
    )
    with LiveServer(tmp_path_factory.mktemp("faults"), config=config) as live:
        yield live


@pytest.fixture
def fault_client(faults) -> openai.OpenAI:
    return sdk(faults)


def test_hanging_upstream_is_504_within_the_timeout(fault_client):
    # Fake: a loopback socket that accepts and never answers (a real upstream cannot hang on demand).
    with pytest.raises(openai.APIStatusError) as raised:
        fault_client.chat.completions.create(model="hang-1", messages=MESSAGES)
    assert raised.value.status_code == 504
    assert raised.value.code == "upstream_timeout"
    assert f"within {TIMEOUT} seconds" in raised.value.message


def test_unreachable_upstream_is_502_after_retries(fault_client):
    with pytest.raises(openai.APIStatusError) as raised:
        fault_client.chat.completions.create(model="down-1", messages=MESSAGES)
    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_unreachable"


def test_timeout_and_unreachable_errors_never_show_the_upstream_key(fault_client, faults):
    # Fake for the hang, as above.
    for model in ("hang-1", "down-1"):
        with pytest.raises(openai.APIStatusError) as raised:
            fault_client.chat.completions.create(model=model, messages=MESSAGES)
        assert SECRET not in raised.value.response.text
    assert SECRET not in faults.log()


def test_429_is_retried_after_the_retry_after_delay(fault_client, limited):
    # Fake: a loopback upstream that answers 429 (retry-after: 2) once, then 200.
    limited.reset(limited=1, retry_after="2")
    completion = fault_client.chat.completions.create(model="flaky-model", messages=MESSAGES)
    assert completion.choices[0].message.content == "ok"
    assert len(limited.arrivals) == 2
    # Our own backoff would have waited at most 0.5 s: the 2 s came from retry-after.
    assert limited.arrivals[1] - limited.arrivals[0] >= 2


def test_429_beyond_the_retry_budget_is_relayed(fault_client, limited):
    # Fake, as above, asking for a wait longer than the gateway's retry budget (5 s).
    limited.reset(limited=5, retry_after="60")
    with pytest.raises(openai.RateLimitError) as raised:
        fault_client.chat.completions.create(model="flaky-model", messages=MESSAGES)
    assert len(limited.arrivals) == 1
    assert raised.value.response.headers["retry-after"] == "60"


def test_cookies_an_upstream_sets_reach_no_client_and_are_never_sent_back(fault_client, limited):
    # Fake: this service sets no cookies; a CDN in front of a real API does.
    limited.reset(cookie="__cf_bm=session-of-whoever-came-first; Path=/; HttpOnly")
    for _ in range(2):
        answer = fault_client.chat.completions.with_raw_response.create(model="cdn-model", messages=MESSAGES)
        assert "set-cookie" not in answer.headers
    assert len(limited.headers) == 2
    assert all("cookie" not in headers for headers in limited.headers)


def test_upstream_requests_retries_and_errors_are_counted_per_upstream(fault_client, faults, limited):
    # Fake, as above: one 429 then 200 (a retry); the unreachable upstream is real.
    from tests.support.metrics import scrape, value

    before = scrape(faults)
    limited.reset(limited=1, retry_after="0")
    fault_client.chat.completions.create(model="flaky-model", messages=MESSAGES)
    with pytest.raises(openai.APIStatusError):
        fault_client.chat.completions.create(model="down-1", messages=MESSAGES)
    after = scrape(faults)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("llm_backend_upstream_requests_total", upstream="flaky") == 1
    assert moved("llm_backend_upstream_retries_total", upstream="flaky") == 1
    assert moved("llm_backend_upstream_errors_total", upstream="flaky", reason="429") == 0
    assert moved("llm_backend_upstream_requests_total", upstream="down") == 1
    assert moved("llm_backend_upstream_errors_total", upstream="down", reason="unreachable") == 1
