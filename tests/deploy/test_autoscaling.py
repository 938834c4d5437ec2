"""The autoscalers' manifests (k8s/autoscaling/, docs/SCALING.md "Autoscaling"): a KEDA
ScaledObject and an HPA through prometheus-adapter, on the replicas' queue depth, wired to
the Deployment and to metrics the service exports. Their schemas are checked with every
manifest (test_manifests.py); their PromQL against a real scrape in tests/e2e/test_metrics.py."""

from __future__ import annotations

import copy
import re

import jsonschema
import pytest
import yaml

from .conftest import K8S, validate_custom_resource

AUTOSCALING = K8S / "autoscaling"


def load(name: str) -> dict:
    (doc,) = yaml.safe_load_all((AUTOSCALING / name).read_text())
    return doc


@pytest.fixture(scope="module")
def scaled_object() -> dict:
    return load("keda-scaledobject.yaml")


@pytest.fixture(scope="module")
def hpa() -> dict:
    return load("hpa.yaml")


@pytest.fixture(scope="module")
def adapter_rules() -> list[dict]:
    return yaml.safe_load(load("prometheus-adapter-rules.yaml")["data"]["config.yaml"])["rules"]


def test_both_scale_the_llm_backend_deployment(manifests, scaled_object, hpa):
    deployments = {obj["metadata"]["name"] for obj in manifests if obj["kind"] == "Deployment"}
    assert scaled_object["spec"]["scaleTargetRef"]["name"] in deployments
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm-backend"}


def test_the_scaled_object_scales_on_queue_depth_with_an_activation_threshold(scaled_object):
    spec = scaled_object["spec"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    metadata = trigger["metadata"]
    # KEDA's prometheus scaler: serverAddress, query and threshold required; numbers as strings.
    assert metadata["serverAddress"].startswith("http")
    assert float(metadata["threshold"]) > float(metadata["activationThreshold"]) > 0
    assert re.fullmatch(r'sum\(llm_backend_queue_waiting\{job="llm-backend"\}\)', metadata["query"])
    # The queue is counted by the replicas: at 0 there would be nothing left to read.
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]


def test_the_hpa_reads_the_metric_the_adapter_serves_and_both_target_the_same_queue(hpa, adapter_rules, scaled_object):
    (metric,) = hpa["spec"]["metrics"]
    (rule,) = adapter_rules
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == rule["name"]["as"]
    assert re.match(rule["name"]["matches"], "llm_backend_queue_waiting")
    assert rule["seriesQuery"].startswith("llm_backend_queue_waiting{")
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    threshold = scaled_object["spec"]["triggers"][0]["metadata"]["threshold"]
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": threshold}
    assert hpa["spec"]["minReplicas"] == scaled_object["spec"]["minReplicaCount"]
    assert hpa["spec"]["maxReplicas"] == scaled_object["spec"]["maxReplicaCount"]


@pytest.mark.parametrize(
    "mistake",
    [
        lambda so: so["spec"].update(minReplicas=1),  # the HPA's spelling, not KEDA's
        lambda so: so["spec"]["triggers"][0].update(threshold="2"),  # outside `metadata`
        lambda so: so["spec"].update(maxReplicaCount="8"),
        lambda so: so["spec"].pop("scaleTargetRef"),
        lambda so: so["spec"]["triggers"][0]["metadata"].update(threshold=2),  # metadata holds strings
    ],
)
def test_the_scaled_objects_schema_refuses_what_keda_would(scaled_object, mistake):
    wrong = copy.deepcopy(scaled_object)
    mistake(wrong)
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(wrong)
