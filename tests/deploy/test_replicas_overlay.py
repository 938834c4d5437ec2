"""The replicas variant (k8s/replicas/): its kustomization rendered the way kustomize applies
JSON patches (.ci/deploy/kube_to_podman.py, with `jsonpatch`: no kustomize binary here), then
checked like the base. `make deploy-check` runs it with Podman."""

from __future__ import annotations

import pytest
from kubernetes_validate import validate

from .conftest import K8S, load_ci_module
from .test_manifests import KUBERNETES_VERSION, by_kind, pod_labels, pod_spec

OVERLAY = K8S / "replicas"


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return load_ci_module("kube_to_podman").render_kustomization(OVERLAY)


def test_every_rendered_object_passes_strict_schema_validation(rendered):
    for obj in rendered:
        validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_service_runs_several_replicas_rolling_one_at_a_time(rendered):
    deployment = by_kind(rendered, "Deployment")["llm-backend"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def test_the_replicas_cannot_start_without_the_shared_database(rendered):
    container = pod_spec(by_kind(rendered, "Deployment")["llm-backend"])["containers"][0]
    database = next(env for env in container["env"] if env["name"] == "DATABASE_URL")
    assert "optional" not in database["valueFrom"]["secretKeyRef"]
    assert "postgres" in by_kind(rendered, "StatefulSet")


def test_the_disruption_budget_keeps_a_replica_of_the_service(rendered):
    deployment = by_kind(rendered, "Deployment")["llm-backend"]
    budget = by_kind(rendered, "PodDisruptionBudget")["llm-backend"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_every_replica_can_mount_the_shared_volumes(rendered):
    pod = pod_spec(by_kind(rendered, "Deployment")["llm-backend"])
    claims = by_kind(rendered, "PersistentVolumeClaim")
    for volume in pod["volumes"]:
        claim = volume.get("persistentVolumeClaim", {}).get("claimName")
        if claim:
            assert claims[claim]["spec"]["accessModes"] == ["ReadWriteMany"], claim
