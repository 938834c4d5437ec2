"""``gen_ai.provider.name`` names the API that answered (issue #56 item 7): ``anthropic`` for a
model of an Anthropic upstream (``api: anthropic``), whose Messages are a ``chat`` in the
GenAI conventions. The upstream is real: the session's server, which serves Anthropic's
Messages on the real model; the spans reach a real OTLP receiver process."""

from __future__ import annotations

import secrets
import time

import anthropic
import pytest

from tests.conftest import MODEL
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_gateway(server, receiver, tmp_path_factory):
    env = {
        "LLM_BACKEND_LOCAL_MODELS": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRICS_EXPORTER": "none",
    }
    config = f"upstreams:\n  - {{name: claude, api: anthropic, base_url: '{server.api}', models: [{MODEL}]}}\n"
    with LiveServer(tmp_path_factory.mktemp("traced-anthropic"), env=env, config=config) as live:
        yield live


def _span_of(receiver: OtlpReceiver, trace_id: str, within: float = 15) -> dict:
    deadline = time.monotonic() + within
    while not (spans := receiver.spans(trace_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    [span] = spans
    return span


def test_a_message_of_an_anthropic_upstream_is_a_chat_of_the_anthropic_provider(traced_gateway, receiver):
    trace_id = secrets.token_hex(16)
    client = anthropic.Anthropic(base_url=traced_gateway.base_url, api_key="client-key", max_retries=0, timeout=120)
    client.messages.create(
        model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    span = _span_of(receiver, trace_id)
    assert span["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert span["name"] == f"chat {MODEL}" and span["attributes"]["gen_ai.operation.name"] == "chat"
