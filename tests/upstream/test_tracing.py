"""OpenTelemetry (issue #51): with ``OTEL_*`` naming an OTLP endpoint, each model call is a
span of the client's W3C trace on the GenAI conventions, exported over OTLP/HTTP to a real
receiver process (``tests/support/otlp_receiver.py``, decoding with opentelemetry-proto);
an upstream's request carries the same trace; the local engine's queue wait and work are
child spans; the GenAI metrics reach the receiver too. Off (``OTEL_SDK_DISABLED``), no span
leaves and the server never imports OpenTelemetry.

The upstream is real (the session's server, the real model) behind ``ChatOnlyUpstream``,
which records the headers it was sent."""

from __future__ import annotations

import contextvars
import secrets
import time

import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.fake_upstreams import ChatOnlyUpstream
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.server import LiveServer

CHAT = [{"role": "user", "content": "Say hi."}]


def _otel(receiver: OtlpReceiver, **more: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "llm-backend-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # spans leave within 0.1 s, not the default 5
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        **more,
    }


def _gateway_config(upstream: ChatOnlyUpstream) -> str:
    return f"""
upstreams:
  - name: lab
    base_url: {upstream.api}
    models: [{MODEL}]
upstream_catch_all: false
"""


@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def upstream(server):
    with ChatOnlyUpstream(server.api) as recording:
        yield recording


@pytest.fixture(scope="module")
def traced_gateway(receiver, upstream, tmp_path_factory):
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", **_otel(receiver)}
    with LiveServer(tmp_path_factory.mktemp("traced-gateway"), env=env, config=_gateway_config(upstream)) as live:
        yield live


@pytest.fixture(scope="module")
def traced_local(receiver, tmp_path_factory):
    """The real local model, traced: its engine's line and work as child spans."""
    with LiveServer(tmp_path_factory.mktemp("traced-local"), env=_otel(receiver)) as live:
        yield live


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def _upstream_headers_of(upstream: ChatOnlyUpstream, trace_id: str) -> dict[str, str]:
    found = [headers for headers in upstream.headers if trace_id in headers.get("traceparent", "")]
    assert len(found) == 1, upstream.headers
    return found[0]


def test_a_chat_is_a_span_of_the_clients_trace_on_the_genai_conventions(traced_gateway, receiver, upstream):
    trace_id, client_span, traceparent = _traceparent()
    answer = sdk(traced_gateway).chat.completions.create(
        model=MODEL, messages=CHAT, max_tokens=5, extra_headers={"traceparent": traceparent}
    )
    [span] = receiver.wait_for_spans(trace_id, {f"chat {MODEL}"})
    assert span["name"] == f"chat {MODEL}"
    assert span["parent_span_id"] == client_span
    attributes = span["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == MODEL
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens > 0
    assert attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens > 0
    assert span["resource"]["service.name"] == "llm-backend-under-test"


def test_the_upstream_request_carries_the_same_trace_as_a_child_of_the_gateways_span(traced_gateway, receiver, upstream):
    trace_id, client_span, traceparent = _traceparent()
    sdk(traced_gateway).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=3, extra_headers={"traceparent": traceparent})
    [span] = receiver.wait_for_spans(trace_id, {f"chat {MODEL}"})
    sent = _upstream_headers_of(upstream, trace_id)["traceparent"]
    version, sent_trace, parent, flags = sent.split("-")
    assert (version, sent_trace, parent, flags) == ("00", trace_id, span["span_id"], "01")


def test_a_stream_has_its_time_to_first_token_and_tokens(traced_gateway, receiver):
    trace_id, _, traceparent = _traceparent()
    stream = sdk(traced_gateway).chat.completions.create(
        model=MODEL, messages=CHAT, max_tokens=5, stream=True, extra_headers={"traceparent": traceparent}
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    [span] = receiver.wait_for_spans(trace_id, {f"chat {MODEL}"})
    ttft = span["attributes"]["gen_ai.server.time_to_first_token"]
    assert 0 < ttft < (span["end"] - span["start"]) / 1e9
    assert "gen_ai.first_token" in span["events"]
    assert span["attributes"]["gen_ai.usage.input_tokens"] > 0  # the usage the client did not ask to see


def test_a_request_without_a_traceparent_starts_a_trace_the_upstream_joins(traced_gateway, receiver, upstream):
    before = len(upstream.headers)
    sdk(traced_gateway).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=2)
    sent = upstream.headers[before]["traceparent"]
    trace_id = sent.split("-")[1]
    [span] = receiver.wait_for_spans(trace_id, {f"chat {MODEL}"})
    assert span["parent_span_id"] == ""
    assert sent.split("-")[2] == span["span_id"]


def test_a_refused_call_has_its_status_as_error_type(traced_gateway, receiver):
    trace_id, _, traceparent = _traceparent()
    with pytest.raises(openai.NotFoundError):
        sdk(traced_gateway).chat.completions.create(model="no-such-model", messages=CHAT, extra_headers={"traceparent": traceparent})
    [span] = receiver.wait_for_spans(trace_id, {"chat no-such-model"})
    assert span["attributes"]["error.type"] == "404"
    assert span["attributes"]["http.response.status_code"] == 404
    assert "gen_ai.response.model" not in span["attributes"]
    assert span["status"] == 0  # unset: a server span's 4xx is the client's mistake


def test_the_genai_metrics_reach_the_receiver(traced_gateway, receiver):
    sdk(traced_gateway).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=2)
    deadline = time.monotonic() + 15
    wanted = {"gen_ai.client.token.usage", "gen_ai.server.request.duration"}
    while not wanted <= {point["name"] for point in receiver.metrics()} and time.monotonic() < deadline:
        time.sleep(0.2)
    points = receiver.metrics()
    usage = [point for point in points if point["name"] == "gen_ai.client.token.usage"]
    assert {point["attributes"]["gen_ai.token.type"] for point in usage} == {"input", "output"}
    assert all(point["attributes"]["gen_ai.operation.name"] == "chat" for point in usage)
    assert any(point["name"] == "gen_ai.server.request.duration" and point["count"] > 0 for point in points)


def test_a_local_models_queue_wait_and_engine_time_are_child_spans(traced_local, receiver):
    trace_id, client_span, traceparent = _traceparent()
    sdk(traced_local).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=3, extra_headers={"traceparent": traceparent})
    spans = receiver.wait_for_spans(trace_id, {f"chat {MODEL}", f"queue {MODEL}", f"engine {MODEL}"})
    by_name = {span["name"]: span for span in spans}
    chat, queue, engine = by_name[f"chat {MODEL}"], by_name[f"queue {MODEL}"], by_name[f"engine {MODEL}"]
    assert chat["parent_span_id"] == client_span
    assert chat["attributes"]["gen_ai.provider.name"] == "llama.cpp"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert queue["parent_span_id"] == engine["parent_span_id"] == chat["span_id"]
    assert chat["start"] <= queue["start"] <= queue["end"] <= engine["start"] < engine["end"] <= chat["end"]


def test_an_embedding_is_a_span_too(traced_local, receiver):
    trace_id, _, traceparent = _traceparent()
    sdk(traced_local).embeddings.create(model=MODEL, input="hello", extra_headers={"traceparent": traceparent})
    spans = receiver.wait_for_spans(trace_id, {f"embeddings {MODEL}", f"engine {MODEL}"})
    [span] = [span for span in spans if span["name"] == f"embeddings {MODEL}"]
    assert span["attributes"]["gen_ai.operation.name"] == "embeddings"
    assert span["attributes"]["gen_ai.usage.input_tokens"] > 0


def test_off_no_span_leaves_and_opentelemetry_is_never_imported(receiver, upstream, tmp_path_factory):
    env = {
        "LLM_BACKEND_LOCAL_MODELS": "false",
        **_otel(receiver, OTEL_SDK_DISABLED="true"),
        "PYTHONPROFILEIMPORTTIME": "1",  # every module the server imports, in its log
    }
    with LiveServer(tmp_path_factory.mktemp("untraced"), env=env, config=_gateway_config(upstream)) as live:
        trace_id, client_span, traceparent = _traceparent()
        sdk(live).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=2, extra_headers={"traceparent": traceparent})
        time.sleep(1)  # ten export intervals, were anything exported
        imported = live.log()
    assert receiver.spans(trace_id) == []
    assert "import time:" in imported and "opentelemetry" not in imported
    # Not traced here, the client's trace context still reaches the upstream as it came.
    assert _upstream_headers_of(upstream, trace_id)["traceparent"] == traceparent


def test_the_settings_that_turn_tracing_on():
    from llm_backend.http.tracing import wanted

    assert not wanted({})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"})
    assert not wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"})


def test_ended_requests_are_built_as_often_as_their_spans_leave():
    from llm_backend.http.trace_export import BUILD_SECONDS, build_seconds

    assert build_seconds({}, True, True) == BUILD_SECONDS == 5.0
    assert build_seconds({"OTEL_BSP_SCHEDULE_DELAY": "100"}, True, True) == 0.1
    assert build_seconds({"OTEL_BSP_SCHEDULE_DELAY": "100"}, False, True) == BUILD_SECONDS  # no span leaves
    assert build_seconds({"OTEL_METRIC_EXPORT_INTERVAL": "300"}, True, True) == 0.3
    assert build_seconds({"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_METRIC_EXPORT_INTERVAL": "x"}, True, True) == BUILD_SECONDS


def test_a_burst_of_ended_requests_is_built_at_once(receiver, monkeypatch):
    from llm_backend.http import context, tracing
    from llm_backend.http.trace_export import BATCH

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)  # the SDK's exporter reads os.environ
    traced = tracing.start(_NoLocalModels(), {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_METRICS_EXPORTER": "none"})
    try:
        assert traced.build_seconds == 5.0
        observer = traced.traced(None)

        def request() -> None:
            record = context.enter({"type": "http", "method": "POST", "headers": []}, None)
            record.operation_id, record.model = "createChatCompletion", MODEL
            observer.begin(record).finished(200)

        for _ in range(BATCH):
            contextvars.copy_context().run(request)  # each its own request's context
        deadline = time.monotonic() + 2  # well before the 5 s build
        while traced.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not traced.pending
    finally:
        traced.shutdown()


class _NoLocalModels:
    local: list = []


def test_a_response_is_a_chat_span(traced_local, receiver):
    trace_id, _, traceparent = _traceparent()
    sdk(traced_local).responses.create(model=MODEL, input="Say hi.", max_output_tokens=16, extra_headers={"traceparent": traceparent})
    spans = receiver.wait_for_spans(trace_id, {f"chat {MODEL}", f"engine {MODEL}"})
    [span] = [span for span in spans if span["name"] == f"chat {MODEL}"]
    assert span["attributes"]["llm_backend.operation_id"] == "createResponse"
    assert span["attributes"]["gen_ai.usage.output_tokens"] > 0


def test_a_traceparent_is_read_as_w3c_trace_context_reads_it():
    from llm_backend.http.traced import parent_of

    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert parent_of([(b"traceparent", f"00-{trace_id}-{span_id}-01".encode()), (b"tracestate", b"k=v")]) == (
        int(trace_id, 16), int(span_id, 16), 1, b"k=v"
    )
    assert parent_of([(b"traceparent", f"01-{trace_id}-{span_id}-00-later".encode())])[:3] == (int(trace_id, 16), int(span_id, 16), 0)
    for wrong in (
        f"00-{'0' * 32}-{span_id}-01",  # an all-zero trace id
        f"00-{trace_id}-{'0' * 16}-01",  # an all-zero parent
        f"ff-{trace_id}-{span_id}-01",  # the forbidden version
        f"00-{trace_id}-{span_id}-01-more",  # version 00 has four fields
        f"00-{trace_id.upper()}-{span_id}-01",  # hex is lower-case
        f"00-+{trace_id[1:]}-{span_id}-01",
    ):
        assert parent_of([(b"traceparent", wrong.encode())]) is None, wrong
    assert parent_of([(b"content-type", b"application/json")]) is None


def test_each_response_of_a_responses_websocket_is_a_span_of_the_handshakes_trace(traced_local, receiver):
    trace_id, client_span, traceparent = _traceparent()
    with sdk(traced_local).responses.connect(extra_headers={"traceparent": traceparent}) as connection:
        for _ in range(2):
            connection.response.create(model=MODEL, input="Say hi.", max_output_tokens=16)
            for event in connection:
                if event.type in ("response.completed", "response.incomplete", "response.failed", "error"):
                    break
    spans = receiver.wait_for_spans(trace_id, {f"chat {MODEL}"})
    deadline = time.monotonic() + 10
    while len([s for s in spans if s["name"] == f"chat {MODEL}"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        spans = receiver.spans(trace_id)
    chats = [span for span in spans if span["name"] == f"chat {MODEL}"]
    assert len(chats) == 2 and all(span["parent_span_id"] == client_span for span in chats)
    assert all(span["attributes"]["gen_ai.usage.output_tokens"] > 0 for span in chats)
    assert all("gen_ai.first_token" in span["events"] for span in chats)
