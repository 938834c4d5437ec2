"""`make bench`: our server against llama-cpp-python's own server and the in-process rate.

Starts both servers on the same GGUF with the same thread counts, runs the shared
``openai_bench.py`` (stream mode, concurrency 1, 4, 8, both targets side by side, the
llama-cpp-python server first so the ratio columns read ours / theirs), then
``inprocess_llama.py`` paired request by request with our server (concurrency 1). Writes
everything, with the machine's load, to ``bench-results/<timestamp>/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_backend.backends.llama.backend import default_batch_threads, default_threads  # noqa: E402
from llm_backend.backends.llama.sources import resolve_gguf  # noqa: E402
from llm_backend.settings import Settings  # noqa: E402
from tests.support.server import free_port, stop_group  # noqa: E402

SHARED = Path(os.environ.get("BENCH_DIR", ROOT.parent / "shared" / "bench"))


def start(command: list[str], env: dict[str, str], log: Path, ready_url: str) -> subprocess.Popen:
    process = subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
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



def load() -> str:
    return Path("/proc/loadavg").read_text().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=default_threads(), help="n_threads: one sequence alone")
    parser.add_argument("--threads-batch", type=int, default=default_batch_threads(), help="n_threads_batch: batches, prompts")
    parser.add_argument("--parallel", type=int, default=8, help="our sequences per worker")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()

    settings = Settings()
    model = settings.models[0]
    gguf = str(resolve_gguf(model, settings.model_cache_dir))
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    python = sys.executable
    ours_port, theirs_port = free_port(), free_port()
    config = out / "config.yaml"
    config.write_text(
        f"models:\n  - id: {model.id}\n    path: {gguf}\n    n_ctx: {model.n_ctx}\n"
        f"    n_threads: {args.threads}\n    n_threads_batch: {args.threads_batch}\n    parallel: {args.parallel}\n"
        f"queue_size: 64\n"
    )
    env = {**os.environ, "LLM_BACKEND_CONFIG": str(config), "LLM_BACKEND_DATA_DIR": str(out / "data")}
    notes = [f"# make bench, {time.strftime('%Y-%m-%d %H:%M:%S')}", "", f"- GGUF: `{gguf}`"]
    notes.append(
        f"- threads (both servers and in-process): n_threads = {args.threads}, n_threads_batch = {args.threads_batch}; cores: {os.cpu_count()}"
    )
    notes.append(f"- ours: parallel = {args.parallel} sequences, 1 worker process; llama-cpp-python server: its defaults")
    notes.append(f"- load average before: {load()}")

    ours = start(
        [python, "-m", "llm_backend", "serve", "--host", "127.0.0.1", "--port", str(ours_port)],
        env, out / "ours.log", f"http://127.0.0.1:{ours_port}/ready",
    )
    theirs = None
    try:
        theirs = start(
            [python, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", model.id,
             "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads_batch),
             "--n_ctx", str(model.n_ctx), "--host", "127.0.0.1", "--port", str(theirs_port)],
            dict(os.environ), out / "llama-cpp-python.log", f"http://127.0.0.1:{theirs_port}/v1/models",
        )
        stream = subprocess.run(
            [python, str(SHARED / "openai_bench.py"),
             "--target", f"llama-cpp-python=http://127.0.0.1:{theirs_port}/v1",
             "--target", f"ours=http://127.0.0.1:{ours_port}/v1",
             "--model", model.id, "--concurrency", args.concurrency, "--requests", str(args.requests),
             "--rounds", str(args.rounds), "--max-tokens", str(args.max_tokens),
             "--json", str(out / "stream.json")],
            capture_output=True, text=True,
        )
        stop_group(theirs, 20)
        theirs = None
        notes.append(f"- load average after the server benchmark: {load()}")
        inprocess = subprocess.run(
            [python, str(SHARED / "inprocess_llama.py"), "--model-path", gguf, "--n-ctx", str(model.n_ctx),
             "--n-threads", str(args.threads), "--n-threads-batch", str(args.threads_batch), "--max-tokens", str(args.max_tokens),
             "--requests", str(args.requests), "--rounds", str(args.rounds),
             "--compare-url", f"http://127.0.0.1:{ours_port}/v1", "--compare-model", model.id,
             "--json", str(out / "inprocess.json")],
            capture_output=True, text=True,
        )
    finally:
        if theirs is not None:
            stop_group(theirs, 20)
        stop_group(ours, 20)
    notes.append(f"- load average at the end: {load()}")
    report = "\n".join(
        notes
        + ["", "## Streaming, ours vs llama-cpp-python's server (openai_bench.py)", "", "```", stream.stdout, stream.stderr[-3000:], "```"]
        + ["", "## In-process llama-cpp-python, paired with ours at concurrency 1 (inprocess_llama.py)", "", "```", inprocess.stdout, inprocess.stderr[-3000:], "```"]
    )
    (out / "results.md").write_text(report)
    print(report)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
