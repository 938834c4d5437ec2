"""Adapt the checked-in Kubernetes manifests to what `podman kube play` (4.3) can run.

The manifests stay as a real cluster wants them; only the CI copy changes:
- A kustomization directory (k8s/replicas/) is rendered the way kustomize applies its
  resources and JSON patches (no kustomize binary here; `jsonpatch` does the patching).
- Services are dropped: podman ignores them (no ClusterIP, no DNS); a container port is
  published on the loopback address with hostIP/hostPort instead. `--front SERVICE=PORT`
  writes an HAProxy configuration that stands in for the Service (see `front_config`).
- A Deployment of several replicas becomes that many Pods, `<name>-0`, `<name>-1`...:
  podman 4.3 plays one pod per Deployment whatever `replicas` says.
- A StatefulSet becomes a Pod named after its Service, with a claim per volumeClaimTemplate
  (`<template>-<name>-0`): pods on a podman network resolve each other by pod name, which
  stands in for the cluster DNS name of the headless Service (podman 4.3 has no StatefulSet).
- PodDisruptionBudgets are dropped: they govern a cluster's evictions, podman has none.
- Secrets are dropped: podman 4.3 stores a Secret of the play file as YAML and reads it back
  as JSON ("secret ... is not valid JSON"); check.sh creates them with `podman secret create`.
- `secretKeyRef`s marked optional whose Secret is not provided are dropped (podman fails on
  a missing Secret even when the reference is optional, Kubernetes skips it).
- Probes are dropped: podman turns a livenessProbe into a `curl` health check run inside
  the container (our image has no curl, by design); check.sh probes /health and /ready
  itself, and the front checks the readinessProbe.
- Images: a short name becomes `localhost/<name>:<tag>` and imagePullPolicy Never, so the
  image just built is used and no registry is asked.

    python kube_to_podman.py k8s/llm-backend.yaml --publish llm-backend:8000=18000 \\
        --image llm-backend=localhost/llm-backend:ci --secret llm-backend-secrets > play.yaml
    python kube_to_podman.py k8s/replicas --publish llm-backend-0:8000=18001 \\
        --publish llm-backend-1:8000=18002 --front llm-backend=18000 --front-config front.cfg ...
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import jsonpatch
import yaml

WORKLOAD_KINDS = {"Deployment", "Pod", "StatefulSet"}


def _pod_spec(obj: dict) -> dict:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def load(path: Path) -> list[dict]:
    """The objects of a manifest file, or of a kustomization directory rendered."""
    if path.is_dir():
        return render_kustomization(path)
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render_kustomization(directory: Path) -> list[dict]:
    """What `kustomize build` makes of ``directory`` for the features k8s/ uses: resources
    (files or directories) and JSON 6902 patches aimed at one object by kind and name."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = [doc for resource in kustomization.get("resources", []) for doc in load(directory / resource)]
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        matches = [o for o in objects if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]]
        if len(matches) != 1:
            raise ValueError(f"patch target {target} matches {len(matches)} objects")
        patched = jsonpatch.apply_patch(copy.deepcopy(matches[0]), yaml.safe_load(patch["patch"]))
        objects[objects.index(matches[0])] = patched
    return objects


def _as_pods(doc: dict) -> list[dict]:
    """``doc`` as the workloads podman plays (see the module docstring)."""
    if doc["kind"] == "StatefulSet":
        name = doc["spec"].get("serviceName") or doc["metadata"]["name"]
        template = copy.deepcopy(doc["spec"]["template"])
        claims = []
        for claim in doc["spec"].get("volumeClaimTemplates", []):
            claim_name = f"{claim['metadata']['name']}-{doc['metadata']['name']}-0"
            claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": claim_name}, "spec": claim["spec"]})
            template["spec"].setdefault("volumes", []).append(
                {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
        return [*claims, _pod(name, template)]
    if doc["kind"] == "Deployment" and doc["spec"].get("replicas", 1) > 1:
        name = doc["metadata"]["name"]
        return [_pod(f"{name}-{i}", copy.deepcopy(doc["spec"]["template"])) for i in range(doc["spec"]["replicas"])]
    return [doc]


def _pod(name: str, template: dict) -> dict:
    metadata = {**template.get("metadata", {}), "name": name}
    # A Deployment's pods are restarted when their container dies; so are these.
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"restartPolicy": "Always", **template["spec"]}}


def adapt(
    docs: list[dict],
    publish: dict[tuple[str, int], int],
    images: dict[str, str],
    secrets: set[str],
) -> list[dict]:
    """The play-file documents for ``docs``; see the module docstring for every change."""
    adapted = []
    for doc in (pod for doc in docs for pod in (_as_pods(doc) if doc["kind"] in WORKLOAD_KINDS else [doc])):
        if doc["kind"] in ("Service", "Secret", "PodDisruptionBudget"):
            continue
        if doc["kind"] in WORKLOAD_KINDS:
            workload = doc["metadata"]["name"]
            for container in _pod_spec(doc)["containers"]:
                image = container["image"]
                container["image"] = images.get(image, image if "/" in image else f"localhost/{image}:latest")
                container["imagePullPolicy"] = "Never"
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    container.pop(probe, None)
                for port in container.get("ports", []):
                    host_port = publish.get((workload, port["containerPort"]))
                    if host_port:
                        port["hostPort"] = host_port
                        port["hostIP"] = "127.0.0.1"
                container["env"] = [
                    env
                    for env in container.get("env", [])
                    if not (
                        (ref := env.get("valueFrom", {}).get("secretKeyRef"))
                        and ref.get("optional")
                        and ref["name"] not in secrets
                    )
                ]
        adapted.append(doc)
    return adapted


def front_config(docs: list[dict], service: str, port: int, publish: dict[tuple[str, int], int]) -> str:
    """An HAProxy configuration standing in for the Service ``service`` on 127.0.0.1:``port``.

    It does what kube-proxy does and no more: each new connection goes to one of the pods
    the Service selects (round robin, where kube-proxy picks at random) among those whose
    readinessProbe passes, at the TCP level. It does not retry: a connection that fails
    fails for the client, as through a real Service. The probe runs every 0.5 s and one
    failure takes a pod out: in a cluster the kubelet sees a dead container at once and its
    pod leaves the Service's endpoints without waiting for probe periods.
    """
    definition = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == service)
    selector = definition["spec"]["selector"]
    target = definition["spec"]["ports"][0].get("targetPort", definition["spec"]["ports"][0]["port"])
    servers = []
    health = None
    workloads = [p for d in docs if d["kind"] in WORKLOAD_KINDS for p in _as_pods(d)]
    for pod in (p for p in workloads if p["kind"] in WORKLOAD_KINDS):
        template = pod if pod["kind"] == "Pod" else pod["spec"]["template"]
        if not selector.items() <= template.get("metadata", {}).get("labels", {}).items():
            continue
        for container in _pod_spec(pod)["containers"]:
            for container_port in container.get("ports", []):
                if target not in (container_port.get("name"), container_port["containerPort"]):
                    continue
                host_port = publish.get((pod["metadata"]["name"], container_port["containerPort"]))
                if host_port is None:
                    raise ValueError(f"{pod['metadata']['name']}:{container_port['containerPort']} is not published")
                servers.append(f"    server {pod['metadata']['name']} 127.0.0.1:{host_port}")
                health = container.get("readinessProbe", {}).get("httpGet", {}).get("path")
    if not servers:
        raise ValueError(f"the Service {service} selects no published pod")
    check = [f"    option httpchk GET {health}", "    http-check expect status 200"] if health else []
    return "\n".join([
        f"# The Service {service} (generated by kube_to_podman.py; see front_config there).",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 10m",
        "    timeout server 10m",
        "    retries 0",
        f"frontend {service}",
        f"    bind 127.0.0.1:{port}",
        f"    default_backend {service}",
        f"backend {service}",
        "    balance roundrobin",
        *check,
        "    default-server check inter 500ms fall 1 rise 1",
        *servers,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="+", type=Path, help="files, or kustomization directories")
    parser.add_argument("--publish", action="append", default=[], metavar="WORKLOAD:PORT=HOSTPORT")
    parser.add_argument("--image", action="append", default=[], metavar="NAME=REF")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME", help="Secrets created beforehand")
    parser.add_argument("--front", metavar="SERVICE=HOSTPORT", help="stand in for this Service (HAProxy)")
    parser.add_argument("--front-config", type=Path, metavar="PATH", help="where to write the HAProxy config")
    options = parser.parse_args(argv)
    publish = {}
    for item in options.publish:
        target, host_port = item.split("=")
        workload, port = target.rsplit(":", 1)
        publish[(workload, int(port))] = int(host_port)
    images = dict(item.split("=", 1) for item in options.image)
    docs = [doc for path in options.manifests for doc in load(path)]
    if options.front:
        service, port = options.front.split("=")
        options.front_config.write_text(front_config(docs, service, int(port), publish))
    yaml.safe_dump_all(adapt(copy.deepcopy(docs), publish, images, set(options.secret)), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
