"""Start-up time of the API: process start -> app built (spec loaded, routes ready), cold
(no parsed-spec cache) and warm, plus time to /ready with the default model.

    .venv/bin/python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import LiveServer  # noqa: E402


def one_run(data_dir: Path) -> tuple[float, float, float]:
    live = LiveServer(data_dir.parent / f"run-{time.monotonic_ns()}", env={"LLM_BACKEND_DATA_DIR": str(data_dir)})
    started = time.perf_counter()
    live.start(timeout=180)
    ready = time.perf_counter() - started
    live.stop()
    events = [json.loads(line) for line in live.log().splitlines() if line.startswith("{")]
    built = next(event["seconds"] for event in events if event.get("event") == "app built")
    spec = next(event["seconds"] for event in events if event.get("event") == "spec loaded")
    return spec, built, ready


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        for _ in range(args.runs):
            shutil.rmtree(data_dir / "cache", ignore_errors=True)
            rows["cold"].append(one_run(data_dir))
            rows["warm"].append(one_run(data_dir))
    print(f"{'':6} {'spec load s':>12} {'app built s':>12} {'/ready s (incl. model)':>24}   (median of {args.runs})")
    for name, runs in rows.items():
        spec, built, ready = (statistics.median(column) for column in zip(*runs))
        print(f"{name:6} {spec:12.3f} {built:12.3f} {ready:24.3f}")


if __name__ == "__main__":
    main()
