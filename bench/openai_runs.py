"""Running the shared load generator (shared/bench/openai_bench.py beside the checkout, or
$OPENAI_BENCH) against named targets, for the benches that compare servers side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shared_bench() -> Path:
    # Beside the checkout (/work/main), or one level further up for a worktree (/work/wt/x).
    candidates = [ROOT.parent / "shared" / "bench", ROOT.parent.parent / "shared" / "bench"]
    return next((folder for folder in candidates if folder.is_dir()), candidates[0]) / "openai_bench.py"


OPENAI_BENCH = Path(os.environ.get("OPENAI_BENCH") or _shared_bench())


def load_generator():
    """The shared load generator as a module (its prompts, its streaming client)."""
    sys.path.insert(0, str(OPENAI_BENCH.parent))
    import openai_bench

    return openai_bench


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def openai_bench(targets: dict[str, tuple[int, str]], model: str, key: str, result: Path, *args: str) -> dict:
    """One run over ``targets`` (name -> (server pid, API root)); its JSON results."""
    command = [sys.executable, str(OPENAI_BENCH), "--model", model, "--api-key", key, "--json", str(result)]
    for target, (pid, api) in targets.items():
        command += ["--target", f"{target}={api}", "--server-pid", f"{target}={pid}"]
    subprocess.run([*command, *args], check=True)
    return json.loads(result.read_text())


def finish(out: Path, lines: list[str]) -> None:
    """A bench's report (``lines``, a code block opened), closed with the load average,
    written to ``out``/results.md and printed."""
    report = "\n".join([*lines, "```", f"load average after: {load_average()}"])
    (out / "results.md").write_text(report)
    print(report)
