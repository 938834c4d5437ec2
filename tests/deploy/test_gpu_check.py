"""The GPU check's plumbing that runs without a GPU (docs/MODELS.md, "The GPU check"): the
settings the benches give the service's model and the in-process ceiling alike
(``BENCH_MODEL_SETTINGS``), and the summary that gathers a run's figures, a run cut short
included. The check itself ran once on a lent GPU; its build and stages were tested here in
its CPU mode (``GPU_CHECK_BACKEND=cpu``), which takes minutes of compiling: not a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import llama_cpp

from llm_backend.backends.llama.engine import llama_params
from llm_backend.settings import Settings

from .conftest import ROOT

GPU = {"n_gpu_layers": "all", "type_k": "q8_0", "type_v": "q8_0", "flash_attn": True}


def bench_settings(settings: dict) -> dict:
    """bench/ceiling.py's MODEL_SETTINGS and settings_yaml() under BENCH_MODEL_SETTINGS."""
    code = "import json; from bench.ceiling import MODEL_SETTINGS, settings_yaml; print(json.dumps([MODEL_SETTINGS, settings_yaml()]))"
    env = {**os.environ, "BENCH_MODEL_SETTINGS": json.dumps(settings), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    parsed, yaml = json.loads(done.stdout)
    return {"parsed": parsed, "yaml": yaml}


def test_the_bench_settings_are_the_models_own_in_the_service_config_and_in_llama_cpps_parameters(tmp_path):
    got = bench_settings(GPU)
    config = tmp_path / "config.yaml"
    config.write_text(f"models:\n  - id: m\n    path: {tmp_path / 'm.gguf'}\n{got['yaml']}embedding_model: ''\n")
    model = Settings(config=str(config)).models[0]
    assert (model.n_gpu_layers, model.type_k, model.type_v, model.flash_attn) == ("all", "q8_0", "q8_0", True)
    # The ceiling's parameters, from the same settings, as the engine derives them.
    params, context = llama_params.model_params(got["parsed"]), llama_params.context_params(got["parsed"])
    assert params.n_gpu_layers == llama_params.ALL_LAYERS
    assert context.type_k == context.type_v == llama_cpp.GGML_TYPE_Q8_0
    assert context.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED


def test_without_bench_settings_the_benches_are_as_before():
    assert bench_settings({}) == {"parsed": {}, "yaml": ""}


def test_the_summary_gathers_each_bench_and_the_rows_of_one_cut_short(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (work / "bench-gpu").mkdir(parents=True)
    (work / "stages.tsv").write_text("build\t0\t252554e-3\ngpu\t0\t29721e-3\npredictions\t124\t120000e-3\n")
    run = lambda tok_s, ttft: {"agg_tok_s": tok_s, "ttft": [ttft], "tokens": 128}  # noqa: E731
    cells = {"1": {"ceiling": [run(800, 0.006), run(800, 0.006), run(900, 0.006)],
                   "ours": [run(720, 0.011), run(760, 0.011), run(900, 0.012)]}}
    (work / "bench-gpu" / "cells.json").write_text(json.dumps(cells))
    (work / "bench-gpu" / "results.md").write_text("| c | ... |\n")
    (work / "predictions.log").write_text("(a) one stream, the edit task\n(b) beside seven unpredicted streams\n")
    (work / "bench-codex").mkdir()
    (work / "bench-codex" / "results.md").write_text("turn 2: TTFT 0.05 s\nlater turns' TTFT (median, turns 2-6): 0.05 s\n")
    (work / "bench-vision").mkdir()
    (work / "bench-vision" / "vision-gemma-3-4b.json").write_text(json.dumps({"ratio_c1": 0.97, "theirs": {"images_per_second": 31.5}}))
    subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "summary", str(out), str(work)],
                   cwd=ROOT, capture_output=True, timeout=60, check=True)
    result = json.loads((out / "results.json").read_text())
    assert [(s["stage"], s["rc"], s["seconds"]) for s in result["stages"]] == [
        ("build", 0, 252.554), ("gpu", 0, 29.721), ("predictions", 124, 120.0)]
    row = result["engine_gpu"]["1"]
    # medians: of each target's rates, and of the per-round ratios (0.9, 0.95, 1.0)
    assert (row["ours_tok_s"], row["ceiling_tok_s"], row["ours_over_ceiling"], row["rounds"]) == (760, 800, 0.95, 3)
    assert result["predictions"] == ["(a) one stream, the edit task", "(b) beside seven unpredicted streams"]
    assert result["codex_session"] == ["turn 2: TTFT 0.05 s", "later turns' TTFT (median, turns 2-6): 0.05 s"]
    assert "predictions    rc=124" in (out / "results.md").read_text()
    assert "## bench/codex_session.py" in (out / "results.md").read_text()
    assert result["vision"]["gemma-3-4b"]["ratio_c1"] == 0.97 and "## bench/vision.py, gemma-3-4b" in (out / "results.md").read_text()


def run_stage(tmp_path: Path, stage: str, settings: dict[str, str]) -> tuple[Path, Path, dict]:
    """The script itself in its CPU mode (GPU_CHECK_BACKEND=cpu: no GPU ran this), its build
    taken from this venv (GPU_CHECK_REUSE), with ``settings`` (GPU_CHECK_STAGES among them):
    its work folder, its OUT and its results.json, the last stage asserted to be ``stage``,
    ended 0 (its log shown if not)."""
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    (work / "venv").symlink_to(Path(sys.executable).parents[1])
    env = {**os.environ, "GPU_CHECK_BACKEND": "cpu", "GPU_CHECK_REUSE": "1", "GPU_CHECK_WORK": str(work),
           "GPU_CHECK_STASH": str(tmp_path / "stash"), "OUT": str(out), **settings}
    subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], cwd=ROOT, env=env, capture_output=True, timeout=300, check=True)
    result = json.loads((out / "results.json").read_text())
    log = work / f"{stage}.log"
    assert [(s["stage"], s["rc"]) for s in result["stages"]][-1] == (stage, 0), log.read_text()[-3000:] if log.exists() else ""
    return work, out, result


def test_the_synthetic_stage_writes_its_model_from_the_kit_alone_and_benches_it_beside_the_ceiling(tmp_path):
    # The test shape and a short bench in place of llama-3.1-8b and qwen3-30b-a3b at c = 1, 8, 32 and 64.
    work, out, result = run_stage(tmp_path, "synthetic-test-tiny-moe", {
        "GPU_CHECK_STAGES": "synthetic", "GPU_CHECK_SYNTHETIC_SHAPES": "test-tiny-moe", "GPU_CHECK_SYNTHETIC_CONCURRENCY": "1,2",
        "GPU_CHECK_REQUESTS": "2", "GPU_CHECK_ROUNDS": "1", "GPU_CHECK_MAX_TOKENS": "8",
    })
    written = result["synthetic"]["test-tiny-moe"]
    assert written["shape"] == "synthetic://test-tiny-moe" and written["written_now"] and written["bytes"] > 18_000_000
    assert Path(written["path"]).is_relative_to(work)  # kept for the next run on the same machine
    rows = result["engine_synthetic-test-tiny-moe"]
    assert set(rows) == {"1", "2"} and all(row["ours_over_ceiling"] > 0 for row in rows.values())
    assert "Synthetic model (random weights, real shapes): synthetic://test-tiny-moe" in (out / "results.md").read_text()


def test_the_vision_stage_runs_its_images_through_ours_and_llama_cpps_mtmd_from_the_script(tmp_path):
    # The stage as the GPU run calls it, on the tiny vision shape and one image in place of
    # smolvlm-256m's and gemma-3-4b's eight: a stage that fails here would spend a lent GPU's
    # minutes on nothing.
    _, out, result = run_stage(tmp_path, "vision", {
        "GPU_CHECK_STAGES": "vision", "GPU_CHECK_VISION_SHAPES": "test-tiny-vision", "GPU_CHECK_IMAGES": "1",
    })
    figures = result["vision"]["test-tiny-vision"]
    assert figures["device"].startswith("cpu") and figures["ours_c1"]["images"] == figures["theirs"]["images"] == 1
    # Both sides framed the image: ours counted its tokens in the prompt, llama.cpp its rows.
    assert figures["ours_c1"]["prompt_tokens"] > 16 and figures["theirs"]["prompt_rows"] > 16
    assert figures["ratio_c1"] > 0 and figures["ratio_together"] > 0
    assert "## bench/vision.py, test-tiny-vision" in (out / "results.md").read_text()


def run_without(packages: tuple[str, ...], code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter where ``packages`` cannot be imported, as on the GPU
    machine with only the kit's wheels."""
    absent = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {packages!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)  # as the import system does\n"
        "sys.meta_path.insert(0, Absent())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", absent + code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_codex_stage_imports_without_the_packages_the_kit_leaves_out():
    """The kit carries the service's wheels and the load generator's, not the SDKs the tests
    use: on the H200 the codex stage failed at ``import openai`` (through codex_record.py's
    recording helpers). Its bench loads here with ``openai`` and ``anthropic`` unimportable."""
    done = run_without(("openai", "anthropic"), "import runpy; runpy.run_path('bench/codex_session.py', run_name='not_main')\n")
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_test_servers_zygote_starts_without_the_otel_extra():
    """The codex and predictions stages start servers through the tests' zygote, which imports
    every module of the API process's packages: on the H200 (2026-11-27) it ended at
    http/trace_export.py, whose ``otel`` extra the kit does not carry (the service imports it
    only when tracing is configured). It skips such a module and still preloads the rest."""
    code = (
        "from tests.support.zygote import _preload\n"
        "_preload()\n"
        "assert 'llm_backend.http.trace_export' not in sys.modules\n"
        "assert {'llm_backend.http.traced', 'llm_backend.storage.models'} <= set(sys.modules)\n"
    )
    done = run_without(("opentelemetry",), code)
    assert done.returncode == 0, done.stderr[-2000:]
