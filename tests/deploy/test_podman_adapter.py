"""The CI adapter (.ci/deploy/kube_to_podman.py) changes only what podman cannot run, and
keeps every Secret, ConfigMap and PVC reference the runtime check is meant to prove."""

from __future__ import annotations

import copy

import pytest
import yaml

from .conftest import K8S, load_ci_module

SERVICE_MANIFEST = K8S / "llm-backend.yaml"


@pytest.fixture(scope="module")
def original() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(SERVICE_MANIFEST.read_text()) if doc]


@pytest.fixture(scope="module")
def adapted(original) -> list[dict]:
    adapter = load_ci_module("kube_to_podman")
    return adapter.adapt(
        copy.deepcopy(original),
        publish={("llm-backend", 8000): 18000},
        images={"llm-backend": "localhost/llm-backend:ci"},
        secrets={"llm-backend-secrets"},
    )


def container(docs, kind="Deployment"):
    deployment = next(doc for doc in docs if doc["kind"] == kind)
    return deployment["spec"]["template"]["spec"]["containers"][0], deployment["spec"]["template"]["spec"]


def test_adapter_keeps_configmap_and_claims(original, adapted):
    kinds = sorted(doc["kind"] for doc in adapted)
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "PersistentVolumeClaim"]
    assert container(adapted)[1]["volumes"] == container(original)[1]["volumes"]
    assert container(adapted)[0]["volumeMounts"] == container(original)[0]["volumeMounts"]


def test_adapter_keeps_the_provided_secret_references(adapted):
    refs = {env["valueFrom"]["secretKeyRef"]["name"] for env in container(adapted)[0]["env"] if "valueFrom" in env}
    assert refs == {"llm-backend-secrets"}


def test_adapter_publishes_the_port_on_loopback_only(adapted):
    (port,) = container(adapted)[0]["ports"]
    assert (port["containerPort"], port["hostPort"], port["hostIP"]) == (8000, 18000, "127.0.0.1")


def test_adapter_keeps_the_security_context(original, adapted):
    assert container(adapted)[0]["securityContext"] == container(original)[0]["securityContext"]
    assert container(adapted)[1]["securityContext"] == container(original)[1]["securityContext"]


def test_adapter_uses_the_local_image_without_pulling(adapted):
    assert container(adapted)[0]["image"] == "localhost/llm-backend:ci"
    assert container(adapted)[0]["imagePullPolicy"] == "Never"
