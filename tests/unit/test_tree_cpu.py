"""The suite's CPU meter (tests/support/tree_cpu.py) charges a test with what its children
computed, reaped or not, and an idle test with next to nothing, each once: pytest runs of two
such tests, in one process and on pytest-xdist workers (whose controller's tree holds them all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEASURED = '''
import subprocess, sys, time

BURN = "import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass"

def test_burns_in_a_child():
    subprocess.run([sys.executable, "-c", BURN], check=True)

def test_idles():
    time.sleep(0.3)
'''


# Only the plugins the run needs (the venv's others, schemathesis' and hypothesis' among them,
# would cost each of the three pytest processes about a second to load).
@pytest.mark.parametrize("workers", [[], ["-p", "xdist.plugin", "-n", "2"]], ids=["one-process", "xdist"])
def test_a_test_is_charged_its_childrens_cpu_and_an_idle_one_next_to_nothing(tmp_path, workers):
    (tmp_path / "test_measured.py").write_text(MEASURED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TREE_CPU_DIR": str(tmp_path / "cpu"), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.tree_cpu", "-p", "no:cacheprovider", *workers,
                    "test_measured.py"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    charged = [record for written in (tmp_path / "cpu").glob("*.json") for record in json.loads(written.read_text())]
    assert sorted(nodeid for nodeid, _ in charged) == ["test_measured.py::test_burns_in_a_child", "test_measured.py::test_idles"]
    seconds = dict(charged)
    assert seconds["test_measured.py::test_burns_in_a_child"] >= 0.55, seconds
    assert seconds["test_measured.py::test_idles"] < 0.2, seconds
