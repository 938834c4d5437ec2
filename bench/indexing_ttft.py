"""Does background indexing starve chat? Chat time-to-first-token idle and while a vector
store indexes, against a live server with the real models (SmolLM2 and MiniLM).

For each indexing niceness given (``LLM_BACKEND_INDEXING_NICE``), one server: TTFT of
``--requests`` streamed chat completions one after another while idle, then streamed chat
completions back to back while one file is indexed (about 4 700 embedding tokens, 800/400
chunks), ``--rounds`` times; and the indexing time. Prints one JSON line per server.

Run: `.venv/bin/python bench/indexing_ttft.py [--nice 10 0] [--requests 6] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.clients import sdk
from tests.support.server import LiveServer

WORDS = ["river", "mountain", "orbit", "lantern", "harvest", "copper", "violin", "glacier", "meadow", "thunder"]


def document(seed: int, lines: int) -> bytes:
    return "\n".join(
        " ".join(WORDS[(line * 7 + i * 3 + seed) % len(WORDS)] + str(line * 31 + i + seed) for i in range(12))
        for line in range(lines)
    ).encode()


PROMPTS = itertools.count()


def ttft(client, count: int) -> list[float]:
    """Seconds to the first content token of ``count`` streamed chats, one after another;
    every prompt differs (a repeated one would be served from the engine's prompt cache)."""
    times = []
    for _ in range(count):
        n = next(PROMPTS)
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": f"Count from {n} to {n + 3}."}], max_tokens=8, stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                times.append(time.perf_counter() - started)
                break
        for _ in stream:
            pass
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "n": len(times),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def run(nice: int, requests: int, rounds: int, lines: int) -> dict:
    """Rounds of (idle window, indexing window) in one server: the machine is shared, so its
    other load drifts; alternating the windows exposes both to the same drift."""
    env = {"LLM_BACKEND_INDEXING_NICE": str(nice)}
    with LiveServer(Path(tempfile.mkdtemp(prefix="bench-ttft-")), env=env) as live:
        client = sdk(live)
        ttft(client, 2)  # warm up the chat path
        store = client.vector_stores.create(name="bench")
        client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("warm.txt", b"warm up"), poll_interval_ms=100)
        idle: list[float] = []
        busy: list[float] = []
        indexing: list[float] = []
        for round_ in range(rounds):
            idle += ttft(client, requests)
            file_id = client.files.create(file=(f"d{round_}.txt", document(round_, lines)), purpose="assistants").id
            started = time.perf_counter()
            client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
            while client.vector_stores.files.retrieve(file_id, vector_store_id=store.id).status == "in_progress":
                busy += ttft(client, 1)
            indexing.append(time.perf_counter() - started)
        return {
            "indexing_nice": nice,
            "idle": summary(idle),
            "while_indexing": summary(busy) if busy else None,
            "indexing_seconds_per_file": [round(seconds, 1) for seconds in indexing],
            "load_average": round(os.getloadavg()[0], 1),
        }


def main() -> None:
    # A SIGTERM (e.g. from `timeout`) unwinds the `with`, so the server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--nice", type=int, nargs="+", default=[10, 0])
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=120)
    args = parser.parse_args()
    for nice in args.nice:
        print(json.dumps(run(nice, args.requests, args.rounds, args.lines)), flush=True)


if __name__ == "__main__":
    main()
