"""The suite's CPU meter (tests/support/tree_cpu.py) charges a test with what its children
computed, reaped or not, and an idle test with next to nothing: a pytest run of two such tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURED = '''
import subprocess, sys, time

BURN = "import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass"

def test_burns_in_a_child():
    subprocess.run([sys.executable, "-c", BURN], check=True)

def test_idles():
    time.sleep(0.3)
'''


def test_a_test_is_charged_its_childrens_cpu_and_an_idle_one_next_to_nothing(tmp_path):
    (tmp_path / "test_measured.py").write_text(MEASURED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TREE_CPU_DIR": str(tmp_path / "cpu")}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.tree_cpu", "-p", "no:cacheprovider", "test_measured.py"],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    (written,) = (tmp_path / "cpu").glob("*.json")
    charged = dict(json.loads(written.read_text()))
    assert charged["test_measured.py::test_burns_in_a_child"] >= 0.55, charged
    assert charged["test_measured.py::test_idles"] < 0.2, charged
