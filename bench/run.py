"""`make bench` (engine rows): our server beside its ceiling and llama-cpp-python's server.

Three targets on the same GGUF and the same threads, at concurrency 1, 4, 8 and 16:

- **ceiling**: llama.cpp in-process, N sequences in one batch (bench/ceiling.py): what
  nothing on these cores can beat;
- **ours**: this service with its default engine settings (only the threads are pinned, to
  the ones the ceiling and llama-cpp-python's server get);
- **llama-cpp-python**: its own server (one request at a time), the peer.

Every round runs every cell on all three, in an order that rotates from round to round;
HTTP targets get the shared load generator's streaming requests (its prompts, greedy,
``max_tokens``), the ceiling the same prompts as one batch of N. A cell's figures are the
medians over rounds of aggregate tokens/s and of the per-round ratios, with TTFT p50 beside
them, and for ours the CPU each generated token cost the API process and the engine worker.
Writes everything, with the machine's load, to ``bench-results/<timestamp>/``.

``--baseline REF`` runs one more target, **baseline**: this service from the git revision REF
(a temporary worktree, as bench/proxy.py's), with the same settings, in the same rotation, so
a change's engine figures read beside the code before it in one run (ours / baseline), with
the CPU each generated token cost both workers (a busy machine distorts it less than tok/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ceiling import MODEL_SETTINGS, settings_yaml  # noqa: E402
from bench.openai_runs import load_average, load_generator  # noqa: E402
from llm_backend.backends.llama.worker_process import ENGINE_ENVIRONMENT  # noqa: E402
from llm_backend.backends.llama.engine.llama_params import SHARE, batch_sizes, offloads, overlaps  # noqa: E402
from llm_backend.backends.llama.local_model import LocalModel  # noqa: E402
from llm_backend.backends.llama.sources import resolve_gguf  # noqa: E402
from llm_backend.settings import ModelConfig, Settings  # noqa: E402
from tests.support.server import children, cpu_seconds, free_port, stop_group  # noqa: E402

THEIRS, OURS, CEILING, BASELINE = "llama-cpp-python", "ours", "ceiling", "baseline"


def start(command: list[str], env: dict[str, str], log: Path, ready_url: str, cwd: Path | None = None) -> subprocess.Popen:
    # ``cwd``: ``python -m`` puts the working directory first on sys.path, ahead of
    # PYTHONPATH, so another checkout's server must be started from that checkout.
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[2]} exited; see {log}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_group(process, 20)
    raise SystemExit(f"{command} not ready; see {log}")


def baseline_tree(ref: str, out: Path) -> Path:
    """A worktree of ``ref`` to run the baseline server from."""
    tree = out / "baseline-src"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref], check=True, capture_output=True)
    return tree


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


class Ceiling:
    """bench/ceiling.py as a child process, the model loaded once."""

    def __init__(self, gguf: str, engine: dict, max_n: int, log: Path) -> None:
        # The engine workers' environment (their spin count): the ceiling differs from ours
        # only by the server around the engine (the spin count's own effect: bench/knobs.py).
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "ceiling.py"), "--serve", "--model-path", gguf,
             "--n", str(max_n), "--n-ctx", str(engine["n_ctx"]), "--n-batch", str(engine["n_batch"]),
             "--threads", str(engine["n_threads"]), "--threads-batch", str(engine["n_threads_batch"])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True, start_new_session=True,
            env={**ENGINE_ENVIRONMENT, **os.environ},
        )
        if not json.loads(self.process.stdout.readline()).get("ready"):
            raise SystemExit(f"the ceiling did not start; see {log}")

    def cell(self, concurrency: int, requests: int, max_tokens: int, offset: int) -> dict:
        """``requests`` sequences in batches of ``concurrency``, like the load generator's cell."""
        runs = []
        for batch in range(math.ceil(requests / concurrency)):
            command = {"n": concurrency, "max_tokens": max_tokens, "offset": offset + batch * concurrency}
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            runs.append(json.loads(self.process.stdout.readline()))
        wall = sum(run["wall_s"] for run in runs)
        tokens = sum(run["tokens"] for run in runs)
        return {"agg_tok_s": tokens / wall, "ttft": [run["ttft_s"] for run in runs for _ in range(run["n"])], "tokens": tokens}

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # still in a cell (the bench was interrupted)
            self.process.kill()
            self.process.wait()


async def http_cell(load, target, concurrency: int, requests: int, max_tokens: int, offset: int) -> dict:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600)) as client:
        results, wall = await load.run_pool(
            requests, concurrency,
            lambda i: load.stream_chat(client, target, load.PROMPTS[(offset + i) % len(load.PROMPTS)], max_tokens, True, {}),
        )
    summary = load.summarize_stream(results, wall)
    return {"agg_tok_s": summary["agg_tok_s"], "ttft": summary["ttft"], "tokens": summary["out_tokens"],
            "errors": summary["errors"], "incomplete": summary["incomplete"]}


def median(values: list[float]) -> float | None:
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def table(cells: dict, levels: list[int], load) -> list[str]:
    def ms(values: list[float], q: int) -> str:
        value = load.percentile(values, q)
        return "-" if value is None else f"{value * 1000:.0f}"

    def ratio(c: int, a: str, b: str) -> str:
        value = median([x["agg_tok_s"] / y["agg_tok_s"] for x, y in zip(cells[c][a], cells[c][b])])
        return "-" if value is None else f"{value:.2f}"

    head = ("| c | ceiling tok/s | ceiling TTFT p50 ms | ours tok/s | ours TTFT p50 / p95 ms | llama-cpp-python tok/s "
            "| theirs TTFT p50 ms | **ours / ceiling** | **ours / theirs** | ceiling / theirs | ours CPU ms/token: API, worker |")
    rows = [head, "|" + " --- |" * (head.count("|") - 1)]
    for c in levels:
        runs = cells[c]
        pooled = {name: [t for run in runs[name] for t in run["ttft"]] for name in runs}
        agg = {name: median([run["agg_tok_s"] for run in runs[name]]) for name in runs}
        cpu = runs[OURS]
        rows.append(
            f"| {c} | {agg[CEILING]:.1f} | {ms(pooled[CEILING], 50)} | {agg[OURS]:.1f} | {ms(pooled[OURS], 50)} / {ms(pooled[OURS], 95)} "
            f"| {agg[THEIRS]:.1f} | {ms(pooled[THEIRS], 50)} | **{ratio(c, OURS, CEILING)}** | **{ratio(c, OURS, THEIRS)}** "
            f"| {ratio(c, CEILING, THEIRS)} | {median([r['api_ms'] for r in cpu]):.2f}, {median([r['worker_ms'] for r in cpu]):.2f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=8, help="requests per cell (at least the concurrency)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-theirs", action="store_true", help="ours and the ceiling only (quicker)")
    parser.add_argument("--baseline", help="a git revision whose server runs beside ours (ours / baseline)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the servers are stopped on the way out
    levels = [int(c) for c in args.concurrency.split(",")]
    load = load_generator()

    settings = Settings()
    model: ModelConfig = settings.models[0]
    gguf = str(resolve_gguf(model, settings.model_cache_dir))
    engine = LocalModel(model, settings).engine_config(Path(gguf))
    # Each sequence's context as before the pool was shared (a model's n_ctx, else 2048), the
    # same for the three: llama-cpp-python's server and the ceiling take one per sequence.
    engine["n_ctx"] = model.n_ctx or SHARE
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    config = out / "config.yaml"
    # Our defaults, but the threads the other two get (both printed below).
    config.write_text(
        f"models:\n  - id: {model.id}\n    path: {gguf}\n    n_ctx: {engine['n_ctx']}\n"
        f"    n_threads: {engine['n_threads']}\n    n_threads_batch: {engine['n_threads_batch']}\n"
        f"{settings_yaml()}queue_size: 64\nembedding_model: ''\n"
    )
    env = {**os.environ, "LLM_BACKEND_CONFIG": str(config), "LLM_BACKEND_DATA_DIR": str(out / "data")}
    notes = [
        f"# make bench (engine), {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
        f"- GGUF: `{gguf}`, {args.max_tokens} tokens per request, greedy, {args.rounds} rounds, cores: {os.cpu_count()}",
        f"- threads (all three): n_threads = {engine['n_threads']} (one sequence), n_threads_batch = {engine['n_threads_batch']} (batches)",
        f"- ours: parallel = {engine['parallel']}, n_batch, n_ubatch = {batch_sizes(engine, offloads(engine))}, "
        f"step {'overlapped' if overlaps(engine, offloads(engine)) else 'plain'} (by device: engine/llama_params.py), one worker; "
        f"llama-cpp-python's server: its defaults; ceiling: bench/ceiling.py",
        f"- GOMP_SPINCOUNT: {os.environ.get('GOMP_SPINCOUNT', ENGINE_ENVIRONMENT['GOMP_SPINCOUNT'])} for ours and the ceiling, "
        f"{os.environ.get('GOMP_SPINCOUNT', 'libgomp default')} for llama-cpp-python",
        f"- model settings (ours and the ceiling; BENCH_MODEL_SETTINGS): {json.dumps(MODEL_SETTINGS) if MODEL_SETTINGS else 'none'}",
        f"- load average before: {load_average()}",
    ]
    print("\n".join(notes), flush=True)
    ports = {OURS: free_port(), THEIRS: free_port(), BASELINE: free_port()}
    servers: dict[str, subprocess.Popen] = {}
    ceiling = None
    try:
        servers[OURS] = start([sys.executable, "-m", "llm_backend", "serve", "--port", str(ports[OURS])],
                              env, out / "ours.log", f"http://127.0.0.1:{ports[OURS]}/ready")
        if args.baseline:
            tree = baseline_tree(args.baseline, out)
            servers[BASELINE] = start([sys.executable, "-m", "llm_backend", "serve", "--port", str(ports[BASELINE])],
                                      {**env, "PYTHONPATH": str(tree), "LLM_BACKEND_DATA_DIR": str(out / "baseline-data")},
                                      out / "baseline.log", f"http://127.0.0.1:{ports[BASELINE]}/ready", cwd=tree)
        if not args.skip_theirs:
            servers[THEIRS] = start(
                [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", model.id,
                 "--n_threads", str(engine["n_threads"]), "--n_threads_batch", str(engine["n_threads_batch"]),
                 "--n_ctx", str(engine["n_ctx"]), "--host", "127.0.0.1", "--port", str(ports[THEIRS])],
                dict(os.environ), out / "llama-cpp-python.log", f"http://127.0.0.1:{ports[THEIRS]}/v1/models")
        ceiling = Ceiling(gguf, engine, max(levels), out / "ceiling.log")
        targets = {name: load.Target(name, f"http://127.0.0.1:{port}/v1", model.id, {}, servers[name].pid)
                   for name, port in ports.items() if name in servers}
        pids = {name: [servers[name].pid, *children(servers[name].pid)] for name in (OURS, BASELINE) if name in servers}
        for target in targets.values():  # warm-up: prompts cached, threads started
            asyncio.run(http_cell(load, target, 2, 2, 16, 0))
        ceiling.cell(2, 2, 16, 0)
        names = [CEILING, OURS] + [name for name in (THEIRS, BASELINE) if name in targets]
        cells: dict[int, dict[str, list[dict]]] = {c: {name: [] for name in names} for c in levels}
        for round_ in range(args.rounds):
            for c in levels:
                requests = max(args.requests, c)
                offset = round_ * requests
                for name in names[round_ % len(names):] + names[: round_ % len(names)]:
                    if name == CEILING:
                        result = ceiling.cell(c, requests, args.max_tokens, offset)
                    else:
                        mine = pids.get(name, [])
                        before = [_cpu(mine[:1]), _cpu(mine[1:])]
                        result = asyncio.run(http_cell(load, targets[name], c, requests, args.max_tokens, offset))
                        if mine:
                            result["api_ms"] = (_cpu(mine[:1]) - before[0]) * 1000 / result["tokens"]
                            result["worker_ms"] = (_cpu(mine[1:]) - before[1]) * 1000 / result["tokens"]
                    cells[c][name].append(result)
                    print(f"round {round_ + 1} c={c:<3} {name:<17} {result['agg_tok_s']:7.1f} tok/s  "
                          f"TTFT p50 {load.percentile(result['ttft'], 50) * 1000:6.0f} ms", flush=True)
    finally:
        if ceiling is not None:
            ceiling.close()
        for server in servers.values():
            stop_group(server, 20)
        if args.baseline:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(out / "baseline-src")], capture_output=True)
    if THEIRS not in names:
        for c in levels:  # the columns stay; theirs shows as missing
            cells[c][THEIRS] = [{"agg_tok_s": math.nan, "ttft": []} for _ in cells[c][OURS]]
    notes.append(f"- load average at the end: {load_average()}")
    rows = table(cells, levels, load)
    if BASELINE in names:
        rows += ["", f"Beside the previous code ({args.baseline}):", "",
                 "| c | baseline tok/s | ours tok/s | **ours / baseline** | worker CPU ms/token: baseline, ours |",
                 "| --- | --- | --- | --- | --- |"]
        for c in levels:
            ratio = median([x["agg_tok_s"] / y["agg_tok_s"] for x, y in zip(cells[c][OURS], cells[c][BASELINE])])
            rows.append(f"| {c} | {median([r['agg_tok_s'] for r in cells[c][BASELINE]]):.1f} "
                        f"| {median([r['agg_tok_s'] for r in cells[c][OURS]]):.1f} | **{ratio:.2f}** "
                        f"| {median([r['worker_ms'] for r in cells[c][BASELINE]]):.2f}, {median([r['worker_ms'] for r in cells[c][OURS]]):.2f} |")
    report = "\n".join(notes + ["", *rows])
    (out / "results.md").write_text(report + "\n")
    (out / "cells.json").write_text(json.dumps(cells, default=str))
    print("\n" + report + f"\n\nwritten to {out}")


if __name__ == "__main__":
    main()
