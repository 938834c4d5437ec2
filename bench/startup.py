"""Start-up of the API process beside a previous revision's, in one run.

For each revision (this checkout, and ``--baseline``, a git revision run from a temporary
worktree with this checkout's venv), alternating, ``--runs`` times: spawn ``llm-backend
serve`` and measure

- seconds from spawn to the first ``200`` of ``/health`` (goal: <= 0.5 s), and the CPU the
  process used until then (robust to a busy machine: on a quiet one the two agree);
- the API process's RSS then and once ``/ready`` (models loaded, before any request;
  goal: <= 100 MB; the engine workers are other processes);
- seconds to ``/ready`` (the default model loaded).

    .venv/bin/python bench/startup.py [--baseline 65c335f] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import load_average  # noqa: E402
from tests.support.server import cpu_seconds, free_port, stop_group  # noqa: E402


def status_of(port: int, path: str) -> int | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
        return int(head.split()[1]) if head.startswith(b"HTTP/1.1") else None
    except (OSError, ValueError, IndexError):
        return None


def rss_mb(pid: int) -> float:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def one_run(checkout: Path, data_dir: Path) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "LLM_BACKEND_DATA_DIR": str(data_dir), "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_backend", "serve", "--port", str(port)], cwd=checkout, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        while status_of(port, "/health") != 200:
            if process.poll() is not None or time.perf_counter() - started > 120:
                raise SystemExit(f"{checkout}: the server did not answer /health")
            time.sleep(0.005)
        health = time.perf_counter() - started
        figures = {"health_s": health, "health_cpu_s": cpu_seconds(process.pid), "health_rss_mb": rss_mb(process.pid)}
        while status_of(port, "/ready") != 200:
            if process.poll() is not None or time.perf_counter() - started > 300:
                raise SystemExit(f"{checkout}: the server did not get ready")
            time.sleep(0.02)
        figures["ready_s"] = time.perf_counter() - started
        figures["ready_rss_mb"] = rss_mb(process.pid)
        return figures
    finally:
        stop_group(process, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="65c335f", help="a git revision to run beside this checkout ('' for none)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so the worktree and servers are cleaned up
    checkouts = {"this checkout": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            worktree = Path(tmp) / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.baseline],
                           check=True, capture_output=True)
            checkouts[f"baseline {args.baseline}"] = worktree
        try:
            print(f"load average before: {load_average()}", flush=True)
            rows: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
            for name, checkout in checkouts.items():  # the spec caches built, not measured
                one_run(checkout, Path(tmp) / f"data-{len(rows[name])}-{abs(hash(name))}")
            for run in range(args.runs):
                order = list(checkouts.items())
                for name, checkout in order if run % 2 == 0 else reversed(order):
                    rows[name].append(one_run(checkout, Path(tmp) / f"data-0-{abs(hash(name))}"))
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(tmp) / "baseline")],
                               capture_output=True)
    print(f"load average after: {load_average()}  (median of {args.runs} runs, alternating)\n")
    print("| revision | spawn to /health s | CPU to /health s | RSS at /health MB | RSS at /ready MB | spawn to /ready s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, runs in rows.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(f"| {name} | {med['health_s']:.3f} | {med['health_cpu_s']:.2f} | {med['health_rss_mb']:.0f} "
              f"| {med['ready_rss_mb']:.0f} | {med['ready_s']:.2f} |")


if __name__ == "__main__":
    main()
