"""`make bench` (synthetic stage) and the GPU check's: a real-size model without its weights.

A ``source: synthetic://<shape>`` model (docs/MODELS.md, "Synthetic models") is written into
``--models-dir`` if it is not there (timed: the seconds and bytes of writing it), then
bench/run.py measures it, ours beside llama.cpp in-process on the same file, with the
arguments given after the shape (``--concurrency 1,8 --rounds 2 ...``; BENCH_MODEL_SETTINGS
as bench/run.py takes it, less ``n_ctx``: ``--n-ctx``). Its answers mean nothing, its speed
and memory are the real model's: the figures that say what this engine gives on a user's
hardware.

    .venv/bin/python bench/synthetic.py qwen2.5-0.5b --skip-theirs --concurrency 1,8 --rounds 2
    .venv/bin/python bench/synthetic.py llama-3.1-8b --models-dir /tmp/models --n-ctx 1024 --concurrency 1,8,32,64

Writes bench/run.py's results, with ``synthetic.json`` (the shape, the file, how long it took
to write) beside them, in ``bench-results/<timestamp>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ceiling import settings_yaml  # noqa: E402
from llm_backend.backends.llama.sources import local_gguf, resolve_gguf  # noqa: E402
from llm_backend.settings.shapes import SHAPES  # noqa: E402
from llm_backend.settings import Settings  # noqa: E402


def config_text(shape: str, n_ctx: int) -> str:
    # With BENCH_MODEL_SETTINGS (bench/run.py gives them to ours and the ceiling), so that its
    # report states the engine's settings as they ran (parallel, offload).
    return f"models:\n  - id: {shape}\n    source: synthetic://{shape}\n    n_ctx: {n_ctx}\n{settings_yaml()}embedding_model: ''\n"


def written(config: Path) -> dict:
    """The shape's file, written now if it is not on disk, and what that took."""
    settings = Settings(config=str(config))
    model = settings.models[0]
    there = local_gguf(model, settings.model_cache_dir) is not None
    started = time.monotonic()
    path = resolve_gguf(model, settings.model_cache_dir)
    seconds = time.monotonic() - started
    return {"shape": model.source, "path": str(path), "bytes": path.stat().st_size, "seconds": round(seconds, 2),
            "cores": os.cpu_count(), "written_now": not there}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models", help="where the file is kept between runs")
    parser.add_argument("--n-ctx", type=int, default=1024, help="each sequence's context (the bench's prompts are short)")
    parser.add_argument("--write-only", action="store_true", help="write the file and report it, no bench")
    args, run_args = parser.parse_known_args()
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    os.environ["LLM_BACKEND_MODELS_DIR"] = str(args.models_dir.resolve())  # here and in bench/run.py, whatever the shell says
    with tempfile.TemporaryDirectory(prefix="synthetic-bench-") as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(config_text(args.shape, args.n_ctx))
        figures = written(config)
        print(json.dumps(figures), flush=True)
        if args.write_only:
            return
        before = set(results.glob("2*"))
        env = {**os.environ, "LLM_BACKEND_CONFIG": str(config)}
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), *run_args], env=env, cwd=ROOT)
    made = sorted(set(results.glob("2*")) - before)
    if made:  # bench/run.py's folder: the file's figures beside its results
        (made[-1] / "synthetic.json").write_text(json.dumps(figures, indent=1))
        with (made[-1] / "results.md").open("a") as report:
            report.write(f"\nSynthetic model (random weights, real shapes): {figures['shape']}, {figures['bytes'] / 1e6:.0f} MB, "
                         f"written in {figures['seconds']} s on {figures['cores']} cores"
                         f"{'' if figures['written_now'] else ' (an earlier run wrote it: reused)'}\n")
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
