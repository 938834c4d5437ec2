"""Adapt the checked-in Kubernetes manifests to what `podman kube play` (4.3) can run.

The manifests stay as a real cluster wants them; only the CI copy changes:
- Services are dropped: podman ignores them (no ClusterIP, no DNS); a container port is
  published on the loopback address with hostIP/hostPort instead.
- Secrets are dropped: podman 4.3 stores a Secret of the play file as YAML and reads it back
  as JSON ("secret ... is not valid JSON"); check.sh creates them with `podman secret create`.
- `secretKeyRef`s marked optional whose Secret is not provided are dropped (podman fails on
  a missing Secret even when the reference is optional, Kubernetes skips it).
- Probes are dropped: podman turns a livenessProbe into a `curl` health check run inside
  the container (our image has no curl, by design); check.sh probes /health and /ready itself.
- Images: a short name becomes `localhost/<name>:<tag>` and imagePullPolicy Never, so the
  image just built is used and no registry is asked.

    python kube_to_podman.py k8s/llm-backend.yaml --publish llm-backend:8000=18000 \\
        --image llm-backend=localhost/llm-backend:ci --secret llm-backend-secrets > play.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

WORKLOAD_KINDS = {"Deployment", "Pod"}


def _pod_spec(obj: dict) -> dict:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def adapt(
    docs: list[dict],
    publish: dict[tuple[str, int], int],
    images: dict[str, str],
    secrets: set[str],
) -> list[dict]:
    """The play-file documents for ``docs``; see the module docstring for every change."""
    adapted = []
    for doc in docs:
        if doc["kind"] in ("Service", "Secret"):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="+", type=Path)
    parser.add_argument("--publish", action="append", default=[], metavar="WORKLOAD:PORT=HOSTPORT")
    parser.add_argument("--image", action="append", default=[], metavar="NAME=REF")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME", help="Secrets created beforehand")
    options = parser.parse_args(argv)
    publish = {}
    for item in options.publish:
        target, host_port = item.split("=")
        workload, port = target.rsplit(":", 1)
        publish[(workload, int(port))] = int(host_port)
    images = dict(item.split("=", 1) for item in options.image)
    docs = [doc for path in options.manifests for doc in yaml.safe_load_all(path.read_text()) if doc]
    yaml.safe_dump_all(adapt(docs, publish, images, set(options.secret)), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
