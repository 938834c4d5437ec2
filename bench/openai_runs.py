"""Running the shared load generator (../shared/bench/openai_bench.py, or $OPENAI_BENCH)
against named targets, for the benches that compare servers side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENAI_BENCH = Path(os.environ.get("OPENAI_BENCH", ROOT.parent / "shared" / "bench" / "openai_bench.py"))


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def openai_bench(targets: dict[str, tuple[int, str]], model: str, key: str, result: Path, *args: str) -> dict:
    """One run over ``targets`` (name -> (server pid, API root)); its JSON results."""
    command = [sys.executable, str(OPENAI_BENCH), "--model", model, "--api-key", key, "--json", str(result)]
    for target, (pid, api) in targets.items():
        command += ["--target", f"{target}={api}", "--server-pid", f"{target}={pid}"]
    subprocess.run([*command, *args], check=True)
    return json.loads(result.read_text())
