"""Fixtures for the static deployment checks: the manifests, the Dockerfile and the
Tiltfile as checked in, read offline."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CI_DEPLOY = ROOT / ".ci" / "deploy"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
# Custom resources (kubernetes-validate knows Kubernetes' own kinds only): their CRD's schema.
CUSTOM_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "keda.sh_scaledobjects.v1alpha1.json"}


def strict(schema: dict) -> dict:
    """A CRD schema that refuses unknown fields, as ``kubectl apply`` (strict field validation)
    does; objects free by design (``metadata``, maps with ``additionalProperties``) stay so."""
    schema = dict(schema)
    if "properties" in schema:
        schema["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        schema.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            schema[key] = [strict(sub) for sub in schema[key]]
    return schema


def validate_custom_resource(doc: dict) -> bool:
    """Whether ``doc`` is a custom resource with a schema here (then checked: raises
    jsonschema's ValidationError); False for any other kind."""
    path = CUSTOM_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    if path is None:
        return False
    jsonschema.Draft7Validator(strict(json.loads(path.read_text()))).validate(doc)
    return True


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
