"""The Kubernetes manifests: schema-valid, and wired together the way validators do not check
(selectors, Service targets, referenced Secrets/ConfigMaps/PVCs and their keys)."""

from __future__ import annotations

import pytest
import yaml
from kubernetes_validate import validate

from llm_backend.settings import Settings

from .conftest import manifest_files, validate_custom_resource

KUBERNETES_VERSION = "1.30.0"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"}
# The model ids chatbot-ui keeps from /v1/models (anything else: an endless spinner).
CHATBOT_UI_MODEL_IDS = {"gpt-3.5-turbo", "gpt-35-turbo", "gpt-4", "gpt-4-32k"}


def by_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in manifests if obj["kind"] == kind}


def workloads(manifests: list[dict]) -> list[dict]:
    return [obj for obj in manifests if obj["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: dict) -> dict:
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    meta = workload["metadata"] if workload["kind"] == "Pod" else workload["spec"]["template"]["metadata"]
    return meta.get("labels", {})


def containers(manifests: list[dict]):
    for workload in workloads(manifests):
        for container in pod_spec(workload)["containers"]:
            yield workload, container


def env_refs(container: dict, ref_kind: str):
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get(ref_kind)
        if ref:
            yield env["name"], ref
    for source in container.get("envFrom", []):
        ref = source.get(ref_kind.replace("KeyRef", "Ref"))
        if ref:
            yield "envFrom", ref


def stored_keys(obj: dict) -> set[str]:
    return set(obj.get("data") or {}) | set(obj.get("stringData") or {})


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: str(path.relative_to(path.parents[1])))
def test_manifest_passes_strict_schema_validation(path):
    for doc in yaml.safe_load_all(path.read_text()):
        # Raises ValidationError (unknown fields too, with strict) or SchemaNotFoundError;
        # a custom resource is checked against its CRD's schema (tests/deploy/schemas/).
        if not validate_custom_resource(doc):
            validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_workload_selector_matches_its_template_labels(manifests):
    for workload in workloads(manifests):
        if workload["kind"] == "Pod":
            continue
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = pod_labels(workload)
        assert selector.items() <= labels.items(), workload["metadata"]["name"]


def test_every_service_selects_exactly_one_workload(manifests):
    for name, service in by_kind(manifests, "Service").items():
        selector = service["spec"]["selector"]
        selected = [w for w in workloads(manifests) if selector.items() <= pod_labels(w).items()]
        assert len(selected) == 1, f"Service {name} selects {[w['metadata']['name'] for w in selected]}"


def test_every_service_targets_a_declared_container_port(manifests):
    for name, service in by_kind(manifests, "Service").items():
        (workload,) = [w for w in workloads(manifests) if service["spec"]["selector"].items() <= pod_labels(w).items()]
        ports = [port for c in pod_spec(workload)["containers"] for port in c.get("ports", [])]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in (p.get("name"), p["containerPort"]) for p in ports), f"Service {name}: {target}"


def test_every_probe_targets_a_declared_container_port(manifests):
    for workload, container in containers(manifests):
        declared = {p["containerPort"] for p in container.get("ports", [])} | {
            p.get("name") for p in container.get("ports", [])
        }
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_name, {})
            action = probe.get("httpGet") or probe.get("tcpSocket")
            if action:
                assert action["port"] in declared, f"{workload['metadata']['name']} {probe_name}"


def test_every_referenced_secret_and_key_exists(manifests):
    secrets = by_kind(manifests, "Secret")
    for workload, container in containers(manifests):
        for env_name, ref in env_refs(container, "secretKeyRef"):
            assert ref["name"] in secrets, f"{workload['metadata']['name']} {env_name}: Secret {ref['name']}"
            if "key" in ref:
                assert ref["key"] in stored_keys(secrets[ref["name"]]), f"{env_name}: key {ref['key']}"


def test_every_referenced_configmap_and_key_exists(manifests):
    configmaps = by_kind(manifests, "ConfigMap")
    for workload in workloads(manifests):
        for volume in pod_spec(workload).get("volumes", []):
            if "configMap" in volume:
                configmap = configmaps[volume["configMap"]["name"]]
                for item in volume["configMap"].get("items", []):
                    assert item["key"] in configmap["data"]
        for container in pod_spec(workload)["containers"]:
            for _, ref in env_refs(container, "configMapKeyRef"):
                assert ref["name"] in configmaps
                if "key" in ref:
                    assert ref["key"] in configmaps[ref["name"]]["data"]


def test_every_claimed_volume_has_a_persistent_volume_claim(manifests):
    claims = by_kind(manifests, "PersistentVolumeClaim")
    for workload in workloads(manifests):
        for volume in pod_spec(workload).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_every_volume_mount_names_a_pod_volume(manifests):
    for workload, container in containers(manifests):
        volumes = {v["name"] for v in pod_spec(workload).get("volumes", [])} | {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{workload['metadata']['name']}: {mount['name']}"


def test_secret_templates_hold_no_real_values(manifests):
    for name, secret in by_kind(manifests, "Secret").items():
        assert not secret.get("data"), f"Secret {name}: base64 data would hide real values"
        for key, value in (secret.get("stringData") or {}).items():
            assert value == "" or "REPLACE_ME" in value, f"Secret {name} key {key} holds a value"


def test_secrets_exist_only_as_templates():
    for path in manifest_files():
        kinds = {doc["kind"] for doc in yaml.safe_load_all(path.read_text()) if doc}
        if "Secret" in kinds:
            assert path.name.endswith(".template.yaml") and path.parent.name == "secrets", path


def test_service_probes_use_health_for_liveness_and_ready_for_readiness(manifests):
    container = pod_spec(by_kind(manifests, "Deployment")["llm-backend"])["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_the_pod_is_killed_only_after_the_service_finished_its_answers(manifests):
    pod = pod_spec(by_kind(manifests, "Deployment")["llm-backend"])
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    grace = float(env.get("LLM_BACKEND_SHUTDOWN_GRACE") or Settings.model_fields["shutdown_grace"].default)
    # Kubernetes' default is 30 s; SIGKILL comes after it.
    assert pod.get("terminationGracePeriodSeconds", 30) > grace


def test_service_runs_as_non_root_without_privilege_escalation(manifests):
    pod = pod_spec(by_kind(manifests, "Deployment")["llm-backend"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_service_config_is_valid_settings_with_chatbot_ui_alias(manifests, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(by_kind(manifests, "ConfigMap")["llm-backend-config"]["data"]["config.yaml"])
    settings = Settings(config=config)
    aliased = [model for model in settings.models if "gpt-3.5-turbo" in model.ids]
    assert len(aliased) == 1
    # chatbot-ui: ~3000 tokens of history plus max_tokens 1000.
    assert aliased[0].n_ctx >= 4096


def test_service_reads_its_config_from_the_mounted_configmap(manifests):
    pod = pod_spec(by_kind(manifests, "Deployment")["llm-backend"])
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    config_volume = next(v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "llm-backend-config")
    mount = next(m for m in container["volumeMounts"] if m["name"] == config_volume)
    assert env["LLM_BACKEND_CONFIG"] == f"{mount['mountPath']}/config.yaml"


def test_service_data_dir_is_the_data_volume(manifests):
    pod = pod_spec(by_kind(manifests, "Deployment")["llm-backend"])
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    data_volume = next(
        v["name"] for v in pod["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == "llm-backend-data"
    )
    assert {"name": data_volume, "mountPath": env["LLM_BACKEND_DATA_DIR"]}.items() <= next(
        m for m in container["volumeMounts"] if m["name"] == data_volume
    ).items()


def test_chatbot_ui_talks_to_our_service_with_one_of_our_keys(manifests):
    container = pod_spec(by_kind(manifests, "Deployment")["chatbot-ui"])["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    service = by_kind(manifests, "Service")["llm-backend"]
    assert env["OPENAI_API_HOST"]["value"] == f"http://llm-backend:{service['spec']['ports'][0]['port']}"
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "llm-backend-secrets",
        "key": "chatbot-ui-api-key",
    }
    template = by_kind(manifests, "Secret")["llm-backend-secrets"]["stringData"]
    assert template["chatbot-ui-api-key"] in template["api-keys"].split(",")


def test_chatbot_ui_default_model_is_served_under_an_id_it_accepts(manifests, tmp_path):
    container = pod_spec(by_kind(manifests, "Deployment")["chatbot-ui"])["containers"][0]
    default_model = next(e["value"] for e in container["env"] if e["name"] == "DEFAULT_MODEL")
    config = tmp_path / "config.yaml"
    config.write_text(by_kind(manifests, "ConfigMap")["llm-backend-config"]["data"]["config.yaml"])
    served = {model_id for model in Settings(config=config).models for model_id in model.ids}
    assert default_model in CHATBOT_UI_MODEL_IDS & served


def test_chatbot_ui_uses_its_published_image(manifests):
    container = pod_spec(by_kind(manifests, "Deployment")["chatbot-ui"])["containers"][0]
    assert container["image"] == "ghcr.io/mckaywrigley/chatbot-ui:main"


def test_postgres_database_url_points_at_the_postgres_service(manifests):
    url = by_kind(manifests, "Secret")["llm-backend-postgres"]["stringData"]["database-url"]
    service = by_kind(manifests, "Service")["postgres"]
    assert f"@{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/" in url
