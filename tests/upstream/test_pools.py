"""Model pools with real engines: one model id served by the local engine and two more
instances of this service as upstreams; load spread, failover when an engine dies, its
return, sticky follow-ups, cooldowns and fallbacks."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.support.clients import TLS, sdk
from tests.support.fake_upstreams import RateLimitedUpstream
from tests.support.server import LiveServer, access_lines, free_port, log_size

MODEL = "smollm2"
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.fixture(scope="module")
def engine_b(tmp_path_factory) -> LiveServer:
    """The third engine: another instance of this service with the default model."""
    with LiveServer(tmp_path_factory.mktemp("engine-b")) as live:
        yield live


@pytest.fixture(scope="module")
def limited():
    with RateLimitedUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def front(server, engine_b, limited, tmp_path_factory) -> LiveServer:
    """`smollm2` on three engines (local, a = the session's server, b); `ghost` only on an
    upstream where nothing listens, falling back to `smollm2`; `flaky-model` first on an
    upstream that answers 429, then on a."""
    config = f"""
upstream_catch_all: false
pool_cooldown: 60
pool_probe_interval: 0.5
upstreams:
  - name: limited
    base_url: {limited.api}
    models: [flaky-model]
  - name: a
    base_url: {server.api}
    models: [{MODEL}]
    aliases: {{flaky-model: {MODEL}}}
  - name: b
    base_url: {engine_b.api}
    models: [{MODEL}]
  - name: dead
    base_url: http://127.0.0.1:{free_port()}/v1
    models: [ghost]
fallbacks:
  ghost: [{MODEL}]
"""
    with LiveServer(tmp_path_factory.mktemp("front"), config=config) as live:
        yield live


@pytest.fixture(scope="module")
def client(front) -> openai.OpenAI:
    return sdk(front)


def deployments(front: LiveServer, model_id: str) -> dict[str, dict]:
    statuses = httpx.get(front.base_url + "/admin/models", verify=TLS).json()["data"]
    status = next(s for s in statuses if s["id"] == model_id)
    return {d["name"]: d for d in status["deployments"]}


def requests_by_deployment(front: LiveServer) -> dict[str, int]:
    return {name: d["requests"] for name, d in deployments(front, MODEL).items()}


def ask(client: openai.OpenAI, text: str, **options):
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], max_tokens=1, **options
    )


def test_the_pool_lists_its_three_deployments(front):
    assert set(deployments(front, MODEL)) == {"local", "a", "b"}
    models = httpx.get(front.api + "/models", verify=TLS).json()["data"]
    assert [m["id"] for m in models].count(MODEL) == 1


def complete(client: openai.OpenAI, text: str):
    """A request without a route key (not a chat): to the least-loaded deployment."""
    return client.completions.create(model=MODEL, prompt=text, max_tokens=1)


def test_requests_spread_evenly_over_the_engines(client, front, server, engine_b):
    before = requests_by_deployment(front)
    since_a, since_b = log_size(server), log_size(engine_b)
    # 15 sequential requests, 5 an engine when even (a tie goes to the one picked least
    # recently): 30 showed no more, at ~0.2 s of CPU each over the three servers. (Chats go
    # by their route key instead: test_replica_routing.py.)
    for i in range(15):
        complete(client, f"Count to {i}.")
    after = requests_by_deployment(front)
    spread = {name: after[name] - before[name] for name in after}
    assert sum(spread.values()) == 15
    assert all(4 <= n <= 6 for n in spread.values()), spread  # within 20 % of even
    # The upstream engines really answered their share.
    assert len(access_lines(server, COMPLETIONS, since=since_a, expect=spread["a"])) == spread["a"]
    assert len(access_lines(engine_b, COMPLETIONS, since=since_b, expect=spread["b"])) == spread["b"]


def test_a_follow_up_turn_goes_to_the_engine_holding_its_prefix(client, front):
    system = "You are a terse assistant. " + "Answer in one word, always, whatever the question is. " * 12
    for topic in ("colours", "animals", "rivers"):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": f"Name one of the {topic}."}]
        first_before = requests_by_deployment(front)
        first = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)
        first_after = requests_by_deployment(front)
        served_first = [name for name in first_after if first_after[name] > first_before[name]]
        messages += [
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "And another one?"},
        ]
        second = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)
        second_after = requests_by_deployment(front)
        served_second = [name for name in second_after if second_after[name] > first_after[name]]
        assert served_first == served_second, (topic, served_first, served_second)
        # The engine skipped the shared prefix: its prompt cache held it (all but what exactness
        # computes again when the answer is not re-read as it was decoded: engine/prefixes.py).
        assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 2 * 64


def in_flight(front: LiveServer) -> dict[str, int]:
    return {name: d["outstanding"] for name, d in deployments(front, MODEL).items()}


def test_streams_finished_or_abandoned_leave_nothing_counted_in_flight(client, front):
    # Least-loaded routing counts each deployment's requests in flight: a stream must stop
    # counting when it ends, and when its client goes away in the middle (local chunks and
    # relayed bytes take different paths), or its deployment would look busy for ever.
    def finished(i: int) -> int:
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Count to {i}."}], max_tokens=6, stream=True
        )
        return sum(1 for _ in stream)

    def abandoned(i: int) -> None:
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Tell a long story {i}."}], max_tokens=200, stream=True
        )
        next(iter(stream))
        stream.close()

    before = requests_by_deployment(front)
    with ThreadPoolExecutor(3) as pool:
        assert all(list(pool.map(finished, range(6))))
        list(pool.map(abandoned, range(3)))
    after = requests_by_deployment(front)
    assert all(after[name] > before[name] for name in after), (before, after)  # every engine streamed
    deadline = time.monotonic() + 10
    while any(in_flight(front).values()):
        assert time.monotonic() < deadline, in_flight(front)
        time.sleep(0.1)


def test_an_engine_killed_mid_run_costs_no_request_and_returns_when_restarted(client, front, engine_b):
    def one(i: int) -> str:
        return ask(client, f"Say {i}.").choices[0].finish_reason

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(one, i) for i in range(24)]
        time.sleep(0.3)
        os.killpg(engine_b.process.pid, signal.SIGKILL)
        engine_b.process.wait()
        finished = [future.result() for future in running]  # raises on any client error
    assert len(finished) == 24
    assert deployments(front, MODEL)["b"]["healthy"] is False

    engine_b.start()
    deadline = time.monotonic() + 15
    while not deployments(front, MODEL)["b"]["healthy"]:
        assert time.monotonic() < deadline, deployments(front, MODEL)["b"]
        time.sleep(0.2)
    since = log_size(engine_b)
    # Back, b is the engine picked least recently: one of the next three (one per engine) is its.
    for i in range(3):
        complete(client, f"Again {i}.")
    assert access_lines(engine_b, COMPLETIONS, since=since, expect=1)


def test_a_model_whose_deployments_are_down_is_answered_by_its_fallback(client, front):
    for i in range(3):
        answer = client.chat.completions.create(model="ghost", messages=[{"role": "user", "content": f"Hi {i}"}], max_tokens=1)
        assert answer.model == MODEL
    dead = deployments(front, "ghost")["dead"]
    assert dead["healthy"] is False and dead["cooldown_seconds"] > 0
    # Cooling down, it was tried once, not on every request.
    assert dead["requests"] == 1


def test_a_rate_limited_upstream_moves_traffic_to_another_deployment(client, front, limited):
    limited.reset(limited=1, retry_after="30")
    # Completions (no route key): the first goes to the least recently picked, the first listed.
    answers = [client.completions.create(model="flaky-model", prompt="Hi", max_tokens=1) for _ in range(3)]
    assert all(answer.choices for answer in answers)
    # One 429, then the pool kept away from it for its retry-after.
    assert len(limited.arrivals) == 1
    status = deployments(front, "flaky-model")["limited"]
    assert status["healthy"] is False and status["cooldown_seconds"] > 20


def test_a_client_mistake_is_not_a_deployment_failure(client, front):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=0)
    assert all(d["healthy"] for d in deployments(front, MODEL).values())


def test_an_operation_only_the_upstreams_take_verbatim_is_forwarded_to_one_of_them(client, front):
    # The upstream deployments do not serve Responses through their methods: the pool
    # forwards them, never to the local engine (it has no API behind it).
    for i in range(3):
        response = client.responses.create(model=MODEL, input=f"Hi {i}", max_output_tokens=16)
        assert response.status in ("completed", "incomplete")


def test_the_pool_is_visible_in_the_metrics(client, front):
    ask(client, "One more.")
    text = httpx.get(front.base_url + "/metrics", verify=TLS).text
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line.startswith("llm_backend_pool_")}
    for name in ("local", "a", "b"):
        assert samples[f'llm_backend_pool_deployment_requests_total{{deployment="{name}",model="{MODEL}"}}'] >= 1
        assert f'llm_backend_pool_deployment_healthy{{deployment="{name}",model="{MODEL}"}}' in samples
    # Engine b was killed earlier in this module: ejected at least once.
    assert samples[f'llm_backend_pool_deployment_ejections_total{{deployment="b",model="{MODEL}"}}'] >= 1
