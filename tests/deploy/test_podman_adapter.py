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


# The replicas variant, as `make deploy-check` plays it.
REPLICA_PORTS = {("llm-backend-0", 8000): 18001, ("llm-backend-1", 8000): 18002}


@pytest.fixture(scope="module")
def replicas():
    adapter = load_ci_module("kube_to_podman")
    original = adapter.render_kustomization(K8S / "replicas")
    played = adapter.adapt(
        copy.deepcopy(original), publish=REPLICA_PORTS,
        images={"llm-backend": "localhost/llm-backend:ci"},
        secrets={"llm-backend-secrets", "llm-backend-postgres"},
    )
    return adapter, original, played


def test_adapter_plays_each_replica_as_its_own_pod(replicas):
    _, original, played = replicas
    deployment = next(d for d in original if d["kind"] == "Deployment")
    pods = {d["metadata"]["name"]: d for d in played if d["kind"] == "Pod"}
    names = [f"llm-backend-{i}" for i in range(deployment["spec"]["replicas"])]
    assert set(names) <= pods.keys()
    for name in names:
        assert pods[name]["spec"]["containers"][0]["ports"][0]["hostPort"] == REPLICA_PORTS[(name, 8000)]
        assert pods[name]["spec"]["volumes"] == deployment["spec"]["template"]["spec"]["volumes"]
        assert pods[name]["metadata"]["labels"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert "Deployment" not in {d["kind"] for d in played}


def test_adapter_names_the_database_pod_after_its_service_with_its_claim(replicas):
    _, original, played = replicas
    service = next(d for d in original if d["kind"] == "StatefulSet")["spec"]["serviceName"]
    pod = next(d for d in played if d["kind"] == "Pod" and d["metadata"]["name"] == service)
    claims = {d["metadata"]["name"] for d in played if d["kind"] == "PersistentVolumeClaim"}
    claimed = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert claimed and claimed <= claims
    # The replicas reach it by that name (their DATABASE_URL's host).
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "llm-backend-postgres"


def test_adapter_leaves_out_what_only_a_cluster_runs(replicas):
    _, _, played = replicas
    assert {d["kind"] for d in played} == {"ConfigMap", "PersistentVolumeClaim", "Pod"}


def test_the_service_stand_in_balances_over_the_ready_replicas_without_retrying(replicas):
    adapter, original, _ = replicas
    config = adapter.front_config(original, "llm-backend", 18000, REPLICA_PORTS)
    lines = [line.strip() for line in config.splitlines()]
    assert "bind 127.0.0.1:18000" in lines
    assert {line for line in lines if line.startswith("server ")} == {
        "server llm-backend-0 127.0.0.1:18001", "server llm-backend-1 127.0.0.1:18002"}
    readiness = next(d for d in original if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert f"option httpchk GET {readiness['httpGet']['path']}" in lines
    # A Service does not retry a failed connection on another pod: the client's retries must.
    assert "retries 0" in lines and "option redispatch" not in lines


def test_the_service_stand_in_refuses_a_replica_it_cannot_reach(replicas):
    adapter, original, _ = replicas
    with pytest.raises(ValueError, match="not published"):
        adapter.front_config(original, "llm-backend", 18000, {("llm-backend-0", 8000): 18001})
