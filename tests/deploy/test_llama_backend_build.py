"""`make run LLAMA_BACKEND=...`: the Makefile rebuilds the venv's llama-cpp-python for the
chosen llama.cpp backend and flags, once, with that backend's CMake flags and without pip's wheel cache.

No GPU toolkit is installed here, so the venv's pip is a stand-in that records how it was
called (its arguments and CMAKE_ARGS): what is under test is the Makefile's choice of flags
and when it rebuilds, not llama.cpp's build itself (docs/MODELS.md says which backends ran)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from .conftest import ROOT

RECORDING_PIP = """#!/bin/sh
echo "CMAKE_ARGS=$CMAKE_ARGS ARGS=$*" >> "$(dirname "$0")/../pip-calls"
"""


@pytest.fixture
def venv(tmp_path):
    """A venv whose install stamp is up to date and whose pip only records its calls."""
    (tmp_path / "bin").mkdir()
    pip = tmp_path / "bin" / "pip"
    pip.write_text(RECORDING_PIP)
    pip.chmod(0o755)
    stamp = tmp_path / ".installed"
    stamp.touch()
    later = time.time() + 60  # newer than the Makefile and pyproject.toml of this checkout
    os.utime(stamp, (later, later))
    return tmp_path


def install(venv, backend: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "install", f"LLAMA_BACKEND={backend}", f"VENV={venv}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def pip_calls(venv) -> list[str]:
    calls = venv / "pip-calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_a_venv_is_built_once_for_cpu_and_again_when_it_holds_a_build_with_other_flags(venv):
    assert install(venv, "cpu").returncode == 0
    (call,) = pip_calls(venv)
    assert "-DGGML_AVX2=ON" in call and "LLAVA_BUILD=OFF" not in call  # with mtmd (issue #60)
    assert install(venv, "cpu").returncode == 0
    assert len(pip_calls(venv)) == 1  # the record says it holds this build
    # A venv of the days before mtmd recorded its backend alone: its build lacks the library.
    (venv / ".llama-backend").write_text("cpu\n")
    assert install(venv, "cpu").returncode == 0
    assert len(pip_calls(venv)) == 2


def test_another_backend_rebuilds_llama_cpp_python_once_with_its_flags(venv):
    done = install(venv, "cuda")
    assert done.returncode == 0, done.stderr
    (call,) = pip_calls(venv)
    assert "-DGGML_CUDA=on" in call and "-DGGML_NATIVE=OFF" in call
    assert "--force-reinstall" in call and "--no-cache-dir" in call and "llama-cpp-python==0.3.36" in call
    assert (venv / ".llama-backend").read_text().startswith("cuda llama-cpp-python==0.3.36 ")
    assert install(venv, "cuda").returncode == 0
    assert len(pip_calls(venv)) == 1  # built once
    assert install(venv, "cpu").returncode == 0  # and back: the portable CPU build
    back = pip_calls(venv)[-1]
    assert "-DGGML_CUDA" not in back and "-DGGML_AVX2=ON" in back


@pytest.mark.parametrize(
    "backend, flag",
    [("metal", "-DGGML_METAL=on"), ("vulkan", "-DGGML_VULKAN=on"), ("openblas", "-DGGML_BLAS_VENDOR=OpenBLAS")],
)
def test_each_backend_has_its_llama_cpp_flag(venv, backend, flag):
    assert install(venv, backend).returncode == 0
    assert flag in pip_calls(venv)[0]


def test_an_unknown_backend_is_refused_before_anything_runs(venv):
    done = install(venv, "rocm-typo")
    assert done.returncode != 0 and "LLAMA_BACKEND must be one of" in done.stderr
    assert pip_calls(venv) == []
