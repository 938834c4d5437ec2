"""Fixtures for the static deployment checks: the manifests, the Dockerfile and the
Tiltfile as checked in, read offline."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CI_DEPLOY = ROOT / ".ci" / "deploy"


def load_ci_module(name: str):
    """A module of .ci/deploy (not a package: the CI scripts live outside the source tree)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CI_DEPLOY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def manifest_files() -> list[Path]:
    """Every Kubernetes object file (kustomizations are not objects: see test_replicas_overlay.py)."""
    return sorted(path for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml")


@pytest.fixture(scope="session")
def manifests() -> list[dict]:
    """Every object of every file under k8s/, secret templates included."""
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="session")
def tiltfile_check():
    return load_ci_module("tiltfile_check")
