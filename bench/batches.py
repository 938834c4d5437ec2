"""`make bench` (batch rows): what a batch is worth, and what it costs interactive traffic.

Against a live server with the default model and settings (batch lines on the
low-priority engine at niceness 19) and a second one whose batch engine runs at niceness
0 (on a machine shared with other work, niceness 19 yields to all of it, not only to this
service's interactive requests: the second shows what the batch itself is worth), in
alternating rounds:

- **throughput**: 256 short chat requests (greedy, ``--max-tokens`` each) as one batch
  (create -> completed, the output file read back) on each server, against the same 256
  requests sent one by one through ``/v1/chat/completions``; lines/s and generated
  tokens/s of each, and the ratios per round. Beside them, the ceiling: the same requests
  decoded by the engine in-process (``engine/batching.Engine``, the batch engine's threads
  and ``parallel``; no process boundary, HTTP, validation or database).
- **TTFT**: time to the first streamed token of interactive chat requests sent one after
  another, while idle and while a batch runs (its lines queued the whole window), the two
  windows alternating; p50 of each and their ratio (the bar: at most +25 %), on both
  servers: the batch engine at niceness 19 (the default) and at 0.

Run: `.venv/bin/python bench/batches.py [--lines 256] [--max-tokens 16] [--rounds 2]
[--ttft-requests 12] [--ttft-rounds 4]` (`--lines 0`: the TTFT part alone).
Prints one JSON line per measurement and a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_backend.backends.llama.worker_process import ENGINE_ENVIRONMENT  # noqa: E402

# The in-process engine spins as the engine workers do (backends/llama/worker_process.py): libgomp's
# default spinning collapses decoding on a busy machine. Read when llama.cpp's OpenMP starts.
for name, value in ENGINE_ENVIRONMENT.items():
    os.environ.setdefault(name, value)

from bench.indexing_ttft import ttft  # noqa: E402
from bench.openai_runs import load_average  # noqa: E402
from llm_backend.backends.llama.backend import LocalModel  # noqa: E402
from llm_backend.backends.llama.params import chat_params  # noqa: E402
from llm_backend.backends.llama.sources import resolve_gguf  # noqa: E402
from llm_backend.settings import Settings  # noqa: E402
from tests.support.batches import file_lines, line, submit, wait  # noqa: E402
from tests.support.clients import sdk  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
SUBJECTS = ["rivers", "copper", "violins", "glaciers", "meadows", "thunder", "lanterns", "orbits"]


def requests(count: int, max_tokens: int, salt: str) -> list[dict]:
    """``count`` distinct short chat requests (a prompt repeated would be served from the
    engine's prompt cache); ``salt`` keeps two sets apart."""
    return [
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": f"In one sentence, a fact about {SUBJECTS[i % 8]} ({salt}{i})."}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        for i in range(count)
    ]


def as_batch(client, bodies: list[dict]) -> dict:
    started = time.perf_counter()
    done = wait(client, submit(client, [line(f"q{i}", body) for i, body in enumerate(bodies)]).id, timeout=3600)
    output = file_lines(client, done.output_file_id)
    seconds = time.perf_counter() - started
    assert done.status == "completed" and len(output) == len(bodies), (done.status, done.request_counts)
    tokens = sum(item["response"]["body"]["usage"]["completion_tokens"] for item in output)
    return {"seconds": seconds, "lines_per_s": len(bodies) / seconds, "tokens_per_s": tokens / seconds}


def one_by_one(client, bodies: list[dict]) -> dict:
    started = time.perf_counter()
    tokens = sum(client.chat.completions.create(**body).usage.completion_tokens for body in bodies)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "lines_per_s": len(bodies) / seconds, "tokens_per_s": tokens / seconds}


class InProcess:
    """The engine itself, in this process, built once: the ceiling of a batch's decoding."""

    def __init__(self, settings: Settings) -> None:
        from llm_backend.backends.llama.engine.batching import Engine

        model = LocalModel(settings.models[0], settings)
        self.config = model.engine_config(resolve_gguf(settings.models[0], settings.model_cache_dir))
        self.finished: list[dict] = []
        self.engine = Engine(self.config, lambda event: self.finished.append(event) if event["event"] == "usage" else None)

    def run(self, bodies: list[dict]) -> dict:
        self.finished.clear()
        started = time.perf_counter()
        for index, body in enumerate(bodies):
            self.engine.submit(f"r{index}", "chat", chat_params(body, self.engine.n_ctx))
        while self.engine.running or self.engine.waiting:
            self.engine.step()
        seconds = time.perf_counter() - started
        tokens = sum(event["completion_tokens"] for event in self.finished)
        return {"seconds": seconds, "lines_per_s": len(bodies) / seconds, "tokens_per_s": tokens / seconds}


def p50_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 1)


def ttft_windows(client, count: int, max_tokens: int, salt: str, round_: int) -> tuple[list[float], list[float]]:
    """TTFTs of ``count`` interactive requests while idle, and of as many while a batch
    runs (queued lines the whole window); the order of the two windows alternates per
    round, so that both see the machine's drift alike."""
    def loaded() -> list[float]:
        running = submit(client, [line(f"b{i}", body) for i, body in enumerate(requests(512, max_tokens, salt))])
        wait(client, running.id, until=("in_progress",))
        while client.batches.retrieve(running.id).request_counts.completed < 8:
            time.sleep(0.1)
        times = ttft(client, count)
        assert client.batches.retrieve(running.id).status == "in_progress", "the batch ended inside the window"
        client.batches.cancel(running.id)
        wait(client, running.id)
        return times

    if round_ % 2:
        busy = loaded()
        return ttft(client, count), busy
    idle = ttft(client, count)
    return idle, loaded()


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ttft-requests", type=int, default=12)
    parser.add_argument("--ttft-rounds", type=int, default=4)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-batches-"))
    runs: dict[str, list[dict]] = {"batch": [], "batch_nice_0": [], "one_by_one": [], "in_process": []}
    ratios: dict[str, list[float]] = {"batch": [], "batch_nice_0": []}
    idle: dict[str, list[float]] = {"nice_19": [], "nice_0": []}
    busy: dict[str, list[float]] = {"nice_19": [], "nice_0": []}
    paired: dict[str, list[float]] = {"nice_19": [], "nice_0": []}  # per-round p50 ratios
    with LiveServer(workdir / "default") as live, LiveServer(workdir / "nice0", env={"LLM_BACKEND_BATCH_NICE": "0"}) as nice0:
        client, client0 = sdk(live, timeout=600), sdk(nice0, timeout=600)
        ceiling = InProcess(Settings(data_dir=workdir / "inprocess")) if args.lines else None
        for warmed in (client, client0):
            as_batch(warmed, requests(4, 2, "warm"))  # starts the low-priority engine
            ttft(warmed, 2)
        for round_ in range(args.rounds if args.lines else 0):
            bodies = requests(args.lines, args.max_tokens, f"t{round_}-")
            order = [
                ("batch", lambda: as_batch(client, bodies)),
                ("batch_nice_0", lambda: as_batch(client0, bodies)),
                ("one_by_one", lambda: one_by_one(client, bodies)),
                ("in_process", lambda: ceiling.run(bodies)),
            ]
            order = order[round_ % 4:] + order[: round_ % 4]
            measured = {name: run() for name, run in order}
            for name, result in measured.items():
                runs[name].append(result)
            for name in ratios:
                ratios[name].append(measured[name]["lines_per_s"] / measured["one_by_one"]["lines_per_s"])
            emit({"round": round_, **{f"{name}_{key}": round(value, 2) for name, run in measured.items() for key, value in run.items()},
                  **{f"{name}_over_one_by_one": round(values[-1], 2) for name, values in ratios.items()},
                  "load_average": load_average()})
        for round_ in range(args.ttft_rounds):
            for name, server in (("nice_19", client), ("nice_0", client0)):
                quiet, loaded = ttft_windows(server, args.ttft_requests, args.max_tokens, f"{name}{round_}-", round_)
                idle[name] += quiet
                busy[name] += loaded
                paired[name].append(statistics.median(loaded) / statistics.median(quiet))
                emit({"round": round_, "batch_engine": name, "ttft_idle_p50_ms": p50_ms(quiet),
                      "ttft_with_batch_p50_ms": p50_ms(loaded), "ratio": round(paired[name][-1], 2),
                      "load_average": load_average()})
    summary: dict = {"lines": args.lines, "max_tokens": args.max_tokens}
    if args.lines:
        lines_per_s = {name: statistics.median(run["lines_per_s"] for run in measured) for name, measured in runs.items()}
        summary.update({f"{name}_lines_per_s": round(value, 2) for name, value in lines_per_s.items()})
        summary.update({f"{name}_over_one_by_one": round(statistics.median(values), 2) for name, values in ratios.items()})
        summary.update({f"{name}_over_in_process": round(lines_per_s[name] / lines_per_s["in_process"], 2) for name in ratios})
    for name in idle:
        summary[f"ttft_p50_idle_ms_{name}"] = p50_ms(idle[name])
        summary[f"ttft_p50_with_batch_ms_{name}"] = p50_ms(busy[name])
        summary[f"ttft_with_batch_over_idle_{name}"] = round(statistics.median(paired[name]), 2)  # median of rounds
    summary["load_average"] = load_average()
    emit({"summary": summary})


if __name__ == "__main__":
    main()
