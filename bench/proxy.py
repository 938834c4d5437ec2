"""What the gateway adds: the same requests direct to an upstream and through our service.

Starts two instances of this service on loopback - the upstream, running the local model,
and a pure gateway in front of it (LLM_BACKEND_LOCAL_MODELS=false, OPENAI_BASE_URL) - and
drives both side by side with the shared openai_bench.py:

1. overhead mode: p50/p99 of GET /v1/models and of a max_tokens=1 chat, and the server CPU
   per request (targets: <= +2 ms p50 on the 1-token chat), with a third target beside
   them: ``floor_proxy.py``, the least a proxy process can do (uvicorn + aiohttp, nothing
   else), so what the gateway adds reads against what any extra hop costs on this machine;
2. stream mode: streaming tokens/s direct vs through the gateway (target: >= 0.98x).

    python bench/proxy.py [--requests 300] [--rounds 3] [--max-tokens 128] [--out DIR] [--baseline REF] [--traced [--paired 600]]

``--baseline REF`` runs a second gateway from the git revision REF (a temporary worktree) as
one more target of the overhead run, so a change's cost reads side by side with the code
before it, in the same run. ``--traced`` runs one more gateway, ``traced``, with OpenTelemetry
on (``OTEL_EXPORTER_OTLP_ENDPOINT``: a real OTLP/HTTP receiver process on loopback,
tests/support/otlp_receiver.py): what tracing adds reads against ``proxy`` (tracing off).
The overhead run gives each target its own stretch of requests, so on a shared machine the
upstream's drift between stretches (several ms at a load average of 4) hides a fraction of a
millisecond; ``--traced`` therefore adds a paired run (``paired``): the 1-token chat at c=1
sent to ``proxy``, ``traced`` (and ``baseline``) in turn, request by request (ABBA), each
target's p50/p99 and CPU per request over the same minutes, and the median of the
per-request differences against ``proxy`` (``--paired`` requests each, default 600).

Every gateway is started alike, as a plain ``python -m llm_backend serve`` as it runs in
production (``gateway``), never one forked from the tests' zygote beside others that are not
(tests/support/zygote.py: a zygote's child has its imports frozen out of the garbage
collector, and a server whose environment names ``OTEL_*`` or ``PYTHONPATH`` cannot be
forked): measured on 600 paired 1-token chats (load average 3.6-4.5), a forked gateway
against a plain one with the same code and settings read 0.14 ms faster at p50 and 0.08 ms
less CPU per request, as much as the tracing being measured. The baseline runs in its own
tree (``-m`` puts the working directory first on ``sys.path``: from this checkout it would
import this checkout's code).

Results: the tables on stdout and JSON files in --out (default data/bench). The machine's
load average is printed first and last: on a shared machine, read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_average, load_generator, openai_bench  # noqa: E402
from tests.support.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.support.server import LiveServer, cpu_seconds, free_port  # noqa: E402

MODEL = "smollm2"
KEY = "sk-bench-upstream-key"


def start_floor(upstream: LiveServer) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "floor_proxy.py"), str(port), upstream.api, KEY])
    api = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(api + "/models", timeout=2).raise_for_status()
            return process, api
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("floor_proxy.py did not answer")


def gateway(workdir: Path, env: dict[str, str], tree: Path = ROOT) -> LiveServer:
    """A gateway as a plain process of ``tree``'s code (never a zygote's fork: see above)."""
    return LiveServer(workdir, env=env, cwd=tree)


def baseline_tree(ref: str, out: Path) -> Path:
    """A worktree of ``ref`` to run the baseline gateway from."""
    tree = out / "baseline-src"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref], check=True, capture_output=True)
    return tree


def bench(direct: LiveServer, proxy: LiveServer, out: Path, name: str, *args: str, others: dict | None = None) -> None:
    """``others``: name -> (pid, API root) of more targets."""
    targets = {"direct": (direct.process.pid, direct.api), "proxy": (proxy.process.pid, proxy.api), **(others or {})}
    print(f"\n## {name}: {' '.join(args)}  (load average {load_average()})", flush=True)
    openai_bench(targets, MODEL, KEY, out / f"proxy-{name}.json", *args)


def paired(targets: dict[str, LiveServer], requests: int, out: Path) -> None:
    """The 1-token chat at c=1, one request to each target in turn (the order reversed every
    other time), so the upstream's drift falls on all of them alike."""
    body = {"model": MODEL, "messages": load_generator().build_messages("Say hi."), "temperature": 0, "max_tokens": 1}
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    order = list(targets.items())
    print(f"\n## paired: 1-token chat, c=1, {requests} each, alternating  (load average {load_average()})", flush=True)
    with httpx.Client(headers={"authorization": f"Bearer {KEY}"}, timeout=60) as client:
        for name, server in order * 10:  # warm-up
            client.post(server.api + "/chat/completions", json=body).raise_for_status()
        before = {name: cpu_seconds(server.process.pid) for name, server in order}
        for n in range(requests):
            for name, server in order if n % 2 == 0 else order[::-1]:
                began = time.perf_counter()
                client.post(server.api + "/chat/completions", json=body).raise_for_status()
                latencies[name].append((time.perf_counter() - began) * 1000)
        cpu = {name: (cpu_seconds(server.process.pid) - before[name]) * 1000 / requests for name, server in order}
    first = order[0][0]
    results = {}
    print("target     p50 ms  p90 ms  p99 ms  srv cpu ms/req  paired diff p50 ms", flush=True)
    for name in targets:
        ranked = sorted(latencies[name])
        at = lambda share: ranked[min(len(ranked) - 1, int(share * len(ranked)))]  # noqa: E731
        differences = sorted(mine - theirs for mine, theirs in zip(latencies[name], latencies[first]))
        r = results[name] = {
            "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "server_cpu_ms_per_req": cpu[name],
            "paired_diff_p50_ms": differences[len(differences) // 2],
        }
        percentiles = f"{r['p50_ms']:7.2f} {r['p90_ms']:7.2f} {r['p99_ms']:7.2f}"
        print(f"{name:<9} {percentiles} {cpu[name]:15.3f} {r['paired_diff_p50_ms']:+19.3f}")
    print(f"load average {load_average()}", flush=True)
    (out / "proxy-paired.json").write_text(json.dumps({"requests": requests, "targets": results}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="overhead requests per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per streamed answer")
    parser.add_argument("--stream-requests", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--baseline", help="a git revision whose gateway runs beside ours in the overhead run")
    parser.add_argument("--traced", action="store_true", help="a gateway with OpenTelemetry on beside it in the overhead run")
    parser.add_argument("--paired", type=int, default=600, help="with --traced: paired 1-token chats per gateway")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"cores {os.cpu_count()}, load average {load_average()}", flush=True)

    with LiveServer(args.out / "upstream", env={"LLM_BACKEND_API_KEYS": KEY}) as upstream:
        gateway_env = {
            "LLM_BACKEND_LOCAL_MODELS": "false",
            "LLM_BACKEND_API_KEYS": KEY,
            "OPENAI_BASE_URL": upstream.api,
            "OPENAI_API_KEY": KEY,
        }
        with gateway(args.out / "gateway", gateway_env) as proxy:
            floor = start_floor(upstream)
            others = {"floor": (floor[0].pid, floor[1])}
            baseline = None
            if args.baseline:
                tree = baseline_tree(args.baseline, args.out)
                baseline = gateway(args.out / "baseline", {**gateway_env, "PYTHONPATH": str(tree)}, tree).start()
                others["baseline"] = (baseline.process.pid, baseline.api)
            traced = receiver = None
            if args.traced:
                receiver = OtlpReceiver().__enter__()
                otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "bench-gateway"}
                traced = gateway(args.out / "traced", {**gateway_env, **otel}).start()
                others["traced"] = (traced.process.pid, traced.api)
            try:
                bench(
                    upstream, proxy, args.out, "overhead",
                    "--mode", "overhead", "--requests", str(args.requests), "--rounds", str(args.rounds),
                    others=others,
                )
                if traced is not None:
                    targets = {"proxy": proxy, "traced": traced, **({"baseline": baseline} if baseline else {})}
                    paired(targets, args.paired, args.out)
            finally:
                floor[0].terminate()
                floor[0].wait()
                if baseline is not None:
                    baseline.stop()
                if traced is not None:
                    traced.stop()
                    spans = len(receiver.spans())
                    receiver.__exit__()
                    print(f"traced gateway: {spans} spans received", flush=True)
            bench(
                upstream, proxy, args.out, "stream",
                "--mode", "stream", "--concurrency", "1", "--requests", str(args.stream_requests),
                "--rounds", str(args.rounds), "--max-tokens", str(args.max_tokens),
            )
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
