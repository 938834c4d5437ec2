"""What each engine knob does, measured side by side: the table of docs/MODELS.md.

One server per variant of a knob (all started at once, idle while another runs), then
rounds of one cell each (``--concurrency`` streams of ``--max-tokens``, the shared load
generator's prompts, greedy), the variants' order rotating from round to round. Prints,
per variant, the median aggregate tokens/s, its median per-round ratio to the first
variant, and TTFT p50/p95 (pooled), with the load average.

    .venv/bin/python bench/knobs.py spin [--concurrency 8 --rounds 6]

Knobs: ``spin`` (GOMP_SPINCOUNT of the engine workers), ``threads`` (n_threads /
n_threads_batch), ``parallel``, ``n_batch``, ``flash_attn``; ``--ceiling`` measures the
same variants on bench/ceiling.py instead (in-process llama.cpp, no server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_average, load_generator  # noqa: E402
from bench.run import http_cell, start  # noqa: E402
from llm_backend.backends.llama.sources import resolve_gguf  # noqa: E402
from llm_backend.settings import Settings  # noqa: E402
from tests.support.server import free_port, stop_group  # noqa: E402

# knob -> variants: (name, model settings, environment of the server and its workers)
KNOBS: dict[str, list[tuple[str, dict, dict]]] = {
    "spin": [
        (f"GOMP_SPINCOUNT={count}", {}, {"GOMP_SPINCOUNT": str(count)})
        for count in (100, 1000, 10000, 30000, 300000)
    ],
    "threads": [
        (f"n_threads {one}, n_threads_batch {batch}", {"n_threads": one, "n_threads_batch": batch}, {})
        for one, batch in ((1, 1), (1, 2), (2, 2))
    ],
    "parallel": [(f"parallel {n}", {"parallel": n}, {}) for n in (4, 8, 16)],
    "n_batch": [(f"n_batch {n}", {"n_batch": n}, {}) for n in (64, 128, 512)],
    "flash_attn": [(f"flash_attn {mode}", {"flash_attn": mode}, {}) for mode in ("auto", "on", "off")],
}


def server(gguf: str, model_id: str, settings: dict, env: dict, folder: Path) -> tuple[subprocess.Popen, str]:
    folder.mkdir(parents=True)
    lines = [f"models:\n  - id: {model_id}\n    path: {gguf}\n"] + [f"    {key}: {value}\n" for key, value in settings.items()]
    (folder / "config.yaml").write_text("".join(lines) + "queue_size: 64\nembedding_model: ''\n")
    port = free_port()
    environment = {**os.environ, **env, "LLM_BACKEND_CONFIG": str(folder / "config.yaml"), "LLM_BACKEND_DATA_DIR": str(folder / "data")}
    process = start([sys.executable, "-m", "llm_backend", "serve", "--port", str(port)], environment, folder / "server.log",
                    f"http://127.0.0.1:{port}/ready")
    return process, f"http://127.0.0.1:{port}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("knob", choices=sorted(KNOBS))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model setting for every variant")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the servers are stopped on the way out
    load = load_generator()
    settings = Settings()
    model = settings.models[0]
    gguf = str(resolve_gguf(model, settings.model_cache_dir))
    common = dict(item.split("=", 1) for item in args.set)
    out = ROOT / "bench-results" / f"knobs-{args.knob}-{time.strftime('%Y%m%d-%H%M%S')}"
    variants = KNOBS[args.knob]
    print(f"# {args.knob}: c = {args.concurrency}, {args.max_tokens} tokens, {args.rounds} rounds, settings {common or 'default'}; "
          f"load average {load_average()}", flush=True)
    servers, targets = [], []
    results: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    try:
        for index, (name, knob_settings, env) in enumerate(variants):
            process, api = server(gguf, model.id, {**common, **knob_settings}, env, out / str(index))
            servers.append(process)
            targets.append(load.Target(name, api, model.id, {}, process.pid))
        for target in targets:
            asyncio.run(http_cell(load, target, 2, 2, 16, 0))
        for round_ in range(args.rounds):
            shift = round_ % len(targets)
            for target in targets[shift:] + targets[:shift]:
                result = asyncio.run(http_cell(load, target, args.concurrency, args.concurrency, args.max_tokens, round_ * args.concurrency))
                results[target.name].append(result)
                print(f"round {round_ + 1} {target.name:<36} {result['agg_tok_s']:7.1f} tok/s  TTFT p50 "
                      f"{load.percentile(result['ttft'], 50) * 1000:6.0f} ms", flush=True)
    finally:
        for process in servers:
            stop_group(process, 20)
    base = results[variants[0][0]]
    print(f"\nload average at the end: {load_average()}\n")
    print(f"| {args.knob} | agg tok/s | x first | TTFT p50 / p95 ms |\n| --- | --- | --- | --- |")
    for name, runs in results.items():
        ratio = statistics.median(run["agg_tok_s"] / first["agg_tok_s"] for run, first in zip(runs, base))
        ttft = [t for run in runs for t in run["ttft"]]
        print(f"| {name} | {statistics.median(run['agg_tok_s'] for run in runs):.1f} | {ratio:.2f} | "
              f"{load.percentile(ttft, 50) * 1000:.0f} / {load.percentile(ttft, 95) * 1000:.0f} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
