"""What operating the gateway costs: metrics, usage accounting and rate limits, on and off.

Two pure gateways in front of one fake upstream (``bench/fake_upstream.py``: uvicorn
answering every chat completion at once with a fixed one, usage included, so the upstream
adds almost nothing and its noise does not hide a fraction of a millisecond):

- ``operated``: everything on - the metrics, the usage accounting, and a static key limited
  in requests/min, tokens/min and tokens/day (far above what the run uses, so every request
  goes through the counting and none is refused);
- ``bare``: the same gateway with ``metrics_enabled``, ``usage_enabled`` false and no limits.

Driven side by side in one run by the shared openai_bench.py (overhead mode, a max_tokens=1
chat, c=1; target order alternating between rounds). Target: ``operated`` at most 0.3 ms
p50 above ``bare``. Run it niced on a shared machine:

    nice -n 10 python bench/operate.py [--requests 400] [--rounds 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_average, openai_bench  # noqa: E402
from tests.support.server import LiveServer, free_port

KEY = "sk-bench-operate-key"


def start_upstream() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(port)])
    api = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            httpx.post(api + "/chat/completions", json={}, timeout=1)
            return process, api
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("bench/fake_upstream.py did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    upstream, upstream_api = start_upstream()
    try:
        common = {
            "LLM_BACKEND_LOCAL_MODELS": "false",
            "LLM_BACKEND_API_KEYS": KEY,
            "OPENAI_BASE_URL": upstream_api,
            "OPENAI_API_KEY": "sk-fake-upstream",
        }
        operated_env = {
            **common,
            "LLM_BACKEND_RATE_LIMIT_RPM": "100000000",
            "LLM_BACKEND_RATE_LIMIT_TPM": "100000000",
            "LLM_BACKEND_RATE_LIMIT_TPD": "100000000000",
        }
        bare_env = {**common, "LLM_BACKEND_METRICS_ENABLED": "false", "LLM_BACKEND_USAGE_ENABLED": "false"}
        with LiveServer(args.out / "operated", env=operated_env) as operated, LiveServer(args.out / "bare", env=bare_env) as bare:
            targets = {"bare": (bare.process.pid, bare.api), "operated": (operated.process.pid, operated.api)}
            print(f"load average {load_average()}", flush=True)
            openai_bench(
                targets, "gpt-bench", KEY, args.out / "operate.json",
                "--mode", "overhead", "--kinds", "chat1", "--requests", str(args.requests), "--rounds", str(args.rounds),
            )
            print(f"load average {load_average()}", flush=True)
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
