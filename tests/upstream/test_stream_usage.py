"""Every stream through an upstream is metered, whether or not its client asked for usage
(issue #47): the upstream is always asked (``stream_options.include_usage``), the client's
stream carries the usage chunk only if it asked, and a usage event the network splits over
two writes is still counted. Through a priced upstream, with the OpenAI SDK: usage, costs
and the hard spend limit see every stream.

The upstream is real (the session's server, the real model) behind ``ChatOnlyUpstream``,
which records what it was asked and cuts each piece carrying ``usage`` into two TCP writes."""

from __future__ import annotations

import math
import time
from decimal import Decimal

import pytest

from llm_backend.serving.metering.holds import text_bytes
from tests.conftest import MODEL
from tests.support.clients import admin_sdk, keyed_server, sdk
from tests.support.fake_upstreams import ChatOnlyUpstream
from tests.support.admin import project_with_key, today, until

ADMIN = "sk-admin-stream-usage-5b2e"
UPSTREAM_MODEL = MODEL  # no alias: relayed unparsed, not re-read line by line for its model id
CHAT = [{"role": "user", "content": "Hi"}]
REFRESH = 0.2
# USD per 1M tokens: a cent a token in, two out.
PRICE_IN, PRICE_OUT = 10_000, 20_000


@pytest.fixture(scope="module")
def upstream(server):
    with ChatOnlyUpstream(server.api, split_usage=True) as splitting:
        yield splitting


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    config = f"""
upstreams:
  - name: lab
    base_url: {upstream.api}
    models: [{UPSTREAM_MODEL}]
upstream_catch_all: false
usage_flush_seconds: 0.3
prices:
  - {{model: {UPSTREAM_MODEL}, input: {PRICE_IN}, output: {PRICE_OUT}}}
"""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "LLM_BACKEND_CONTROL_PLANE_REFRESH_SECONDS": str(REFRESH)}
    with keyed_server(tmp_path_factory.mktemp("metered"), [], [f"ops={ADMIN}"], env=env, config=config) as live:
        yield live


@pytest.fixture(scope="module")
def org(gateway):
    return admin_sdk(gateway, ADMIN).admin.organization





def _usage(org, project: str) -> tuple[int, int, int]:
    """Today's (requests, input tokens, output tokens) of the project's completions."""
    results = today(org, "completions", project)
    return (sum(r.num_model_requests for r in results), sum(r.input_tokens for r in results),
            sum(r.output_tokens for r in results))


def _stream_lines(client, **options) -> list[str]:
    """The raw ``data:`` lines of one streamed chat, as the SDK received them."""
    with client.chat.completions.with_streaming_response.create(
        model=UPSTREAM_MODEL, messages=CHAT, max_tokens=3, stream=True, **options
    ) as response:
        return [line for line in response.iter_lines() if line.startswith("data:")]


def test_streams_without_include_usage_cost_what_they_used_and_carry_no_usage(gateway, org, upstream):
    project, key = project_with_key(org, "sdk-default")
    client = sdk(gateway, key)
    asked_before = len(upstream.requests)
    for _ in range(4):
        lines = _stream_lines(client)
        assert lines[-1] == "data: [DONE]" and len(lines) > 2
        assert not [line for line in lines if "usage" in line]  # not a usage chunk, not a null member
    # The upstream was asked for the usage every time, in the client's stead.
    bodies = [body for path, body in upstream.requests[asked_before:] if path.endswith("/chat/completions")]
    assert [body["stream_options"] for body in bodies] == [{"include_usage": True}] * 4

    used = until(lambda: (found := _usage(org, project))[0] == 4 and found)
    assert used, _usage(org, project)
    requests, input_tokens, output_tokens = used
    assert input_tokens > 0 and 4 <= output_tokens <= 12
    expected = (input_tokens * Decimal(PRICE_IN) + output_tokens * Decimal(PRICE_OUT)) / 1_000_000
    costs = until(lambda: sum(Decimal(str(r.amount.value)) for r in today(org, "costs", project)))
    assert abs(costs - expected) < Decimal("0.005")


def test_a_stream_without_include_usage_spends_toward_the_hard_limit(gateway, org):
    # The limit is the stream's most (held while it runs: its body's text and its cap, at
    # the price) rounded up to the cent: the first fits; once its real cost (a few tens of
    # cents) is counted, what remains holds no second one.
    body = {"messages": CHAT, "model": UPSTREAM_MODEL, "max_tokens": 3, "stream": True}  # what the SDK sends
    most = text_bytes(body) * PRICE_IN + 3 * PRICE_OUT  # micro-dollars
    project, key = project_with_key(org, "sdk-capped")
    org.projects.spend_limit.update(project, threshold_amount=math.ceil(most / 10_000), currency="USD", interval="month")
    time.sleep(REFRESH + 0.1)
    client = sdk(gateway, key)
    assert _stream_lines(client)[-1] == "data: [DONE]"

    def refused():
        try:
            _stream_lines(client)
        except Exception as error:  # the SDK's RateLimitError
            return error
        return None

    error = until(refused)
    assert error is not None and error.status_code == 429 and error.code == "insufficient_quota"


def test_a_client_that_asks_gets_the_usage_chunk_and_it_counts_when_the_network_splits_it(gateway, org, upstream):
    project, key = project_with_key(org, "sdk-asks")
    client = sdk(gateway, key)
    asked_before, splits = len(upstream.requests), upstream.splits
    chunks = list(client.chat.completions.create(
        model=UPSTREAM_MODEL, messages=CHAT, max_tokens=3, stream=True, stream_options={"include_usage": True}
    ))
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert all(chunk.usage is None for chunk in chunks[:-1])
    [(_, body)] = upstream.requests[asked_before:]
    assert body["stream_options"] == {"include_usage": True}
    # The upstream's usage event reached the gateway in two pieces: counted all the same.
    assert upstream.splits == splits + 1
    expected = (1, last.usage.prompt_tokens, last.usage.completion_tokens)
    assert until(lambda: _usage(org, project) == expected), _usage(org, project)
