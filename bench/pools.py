"""One model on 1, 2 and 3 engines through a pool, and what the pool's routing costs, beside
LiteLLM's router on the same engines.

Starts three engines (instances of this service running the local model) and three pure
gateways in front of them whose `upstreams` all name the model: a pool of 1, 2 and 3
deployments. Then, with the shared openai_bench.py:

1. stream mode, the three pools side by side at one concurrency: aggregate tokens/s, and how
   evenly the 3-engine pool spread the requests (its /admin/models deployments). On this
   2-core machine the engines share the cores, so read the routing and the balance, not a
   speed-up;
2. overhead mode, a 1-token chat: an engine direct, through the 3-engine pool, and through
   LiteLLM's proxy routing over the same three engines (when a LiteLLM install is found:
   --litellm PATH-TO-litellm, default /work/litellm-venv/bin/litellm). Target: the pool adds
   at most 1 ms p50 over the direct call.

    python bench/pools.py [--requests 200] [--rounds 3] [--concurrency 6] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import LiveServer, free_port  # noqa: E402

OPENAI_BENCH = Path(os.environ.get("OPENAI_BENCH", ROOT.parent / "shared" / "bench" / "openai_bench.py"))
MODEL = "smollm2"
KEY = "sk-bench-pool-key"
ADMIN = "sk-bench-pool-admin"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pool_config(engines: list[LiveServer]) -> str:
    upstreams = "".join(
        f"  - {{name: e{i}, base_url: '{engine.api}', api_key: {KEY}, models: [{MODEL}]}}\n"
        for i, engine in enumerate(engines, 1)
    )
    return f"local_models: false\nupstream_catch_all: false\nupstreams:\n{upstreams}"


def start_litellm(binary: Path, engines: list[LiveServer], out: Path) -> tuple[subprocess.Popen, str] | None:
    if not binary.exists():
        print(f"(no LiteLLM at {binary}: its column is left out)")
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
        env=env, stdout=log, stderr=subprocess.STDOUT,
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
    process.kill()
    print(f"(LiteLLM did not start: see {out / 'litellm.log'})")
    return None


def bench(out: Path, name: str, targets: dict[str, tuple[int, str]], *args: str) -> dict:
    command = [sys.executable, str(OPENAI_BENCH), "--model", MODEL, "--api-key", KEY, "--json", str(out / f"pools-{name}.json")]
    for target, (pid, api) in targets.items():
        command += ["--target", f"{target}={api}", "--server-pid", f"{target}={pid}"]
    print(f"\n## {name}: {' '.join(args)}  (load average {load()})", flush=True)
    subprocess.run([*command, *args], check=True)
    return json.loads((out / f"pools-{name}.json").read_text())


def spread(front: LiveServer) -> dict[str, int]:
    statuses = httpx.get(front.base_url + "/admin/models", headers={"Authorization": f"Bearer {ADMIN}"}).json()["data"]
    status = next(s for s in statuses if s["id"] == MODEL)
    return {d["name"]: d["requests"] for d in status["deployments"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="overhead requests per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=6, help="streams at once, per pool")
    parser.add_argument("--stream-requests", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--litellm", type=Path, default=Path("/work/litellm-venv/bin/litellm"))
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # Stopped with SIGTERM, still stop the servers (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"cores {os.cpu_count()}, load average {load()}", flush=True)

    keyed = {"LLM_BACKEND_API_KEYS": KEY}
    engines = [LiveServer(args.out / f"engine{i}", env=keyed).start() for i in (1, 2, 3)]
    fronts = [
        LiveServer(args.out / f"pool{n}", env={**keyed, "LLM_BACKEND_ADMIN_KEYS": ADMIN}, config=pool_config(engines[:n])).start()
        for n in (1, 2, 3)
    ]
    litellm = None
    try:
        before = spread(fronts[2])
        targets = {f"pool{n}": (front.process.pid, front.api) for n, front in zip((1, 2, 3), fronts)}
        bench(
            args.out, "stream", targets, "--mode", "stream", "--concurrency", str(args.concurrency),
            "--requests", str(args.stream_requests), "--rounds", str(args.rounds), "--max-tokens", str(args.max_tokens),
        )
        after = spread(fronts[2])
        counts = {name: after[name] - before[name] for name in after}
        mean = sum(counts.values()) / len(counts)
        print(f"\n3-engine pool, requests per engine: {counts} (largest deviation from even: "
              f"{max(abs(c - mean) for c in counts.values()) / mean:.0%})")

        litellm = start_litellm(args.litellm, engines, args.out)
        targets = {"direct": (engines[0].process.pid, engines[0].api), "pool3": (fronts[2].process.pid, fronts[2].api)}
        if litellm is not None:
            targets["litellm3"] = (litellm[0].pid, litellm[1])
        bench(
            args.out, "overhead", targets, "--mode", "overhead", "--kinds", "chat1",
            "--requests", str(args.requests), "--rounds", str(args.rounds),
        )
    finally:
        if litellm is not None:
            litellm[0].terminate()
            litellm[0].wait()
        for server in [*fronts, *engines]:
            server.stop()
    print(f"\nload average at the end {load()}")


if __name__ == "__main__":
    main()
