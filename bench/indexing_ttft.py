"""Does background indexing starve chat? Chat time-to-first-token idle and while a vector
store indexes, against a live server with the real models (SmolLM2 and MiniLM).

For each indexing niceness given (``LLM_BACKEND_INDEXING_NICE``), one server: TTFT of
``--requests`` streamed chat completions one after another while idle, then the same while
a batch of files (about ``--tokens`` embedding tokens in all) is being indexed; and the
indexing time. Prints one JSON line per server.

Run: `.venv/bin/python bench/indexing_ttft.py [--nice 10 0] [--requests 12]`.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.clients import sdk  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

WORDS = "river mountain orbit lantern harvest copper violin glacier meadow thunder".split()


def document(seed: int, lines: int) -> bytes:
    return "\n".join(
        " ".join(WORDS[(line * 7 + i * 3 + seed) % len(WORDS)] + str(line * 31 + i + seed) for i in range(12))
        for line in range(lines)
    ).encode()


def ttft(client, count: int) -> list[float]:
    times = []
    for n in range(count):
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": f"Count to {n + 3}."}], max_tokens=8, stream=True
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


def run(nice: int, requests: int, files: int, lines: int) -> dict:
    env = {"LLM_BACKEND_INDEXING_NICE": str(nice)}
    with LiveServer(Path(tempfile.mkdtemp(prefix="bench-ttft-")), env=env) as live:
        client = sdk(live)
        ttft(client, 2)  # warm up the chat path
        store = client.vector_stores.create(name="bench")
        client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("warm.txt", b"warm up"), poll_interval_ms=100)
        idle = ttft(client, requests)
        ids = [client.files.create(file=(f"d{i}.txt", document(i, lines)), purpose="assistants").id for i in range(files)]
        started = time.perf_counter()
        client.vector_stores.file_batches.create(store.id, file_ids=ids)
        busy = []
        while client.vector_stores.retrieve(store.id).file_counts.in_progress:
            busy += ttft(client, 1)
        indexing = time.perf_counter() - started
        return {
            "indexing_nice": nice,
            "idle": summary(idle),
            "while_indexing": summary(busy) if busy else None,
            "indexing_seconds": round(indexing, 1),
        }


def main() -> None:
    # A SIGTERM (e.g. from `timeout`) unwinds the `with`, so the server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--nice", type=int, nargs="+", default=[10, 0])
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--lines", type=int, default=120)
    args = parser.parse_args()
    for nice in args.nice:
        print(json.dumps(run(nice, args.requests, args.files, args.lines)), flush=True)


if __name__ == "__main__":
    main()
