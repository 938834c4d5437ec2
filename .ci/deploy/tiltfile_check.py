"""Evaluate the Tiltfile without Tilt, and check what it references.

Tilt itself is not installable on the CI machine, so the Tiltfile runs in starlark-rust
(PyPI ``starlark-pyo3``) with stub Tilt builtins that record every call. After evaluation,
``problems()`` lists every reference that does not resolve: missing files, a docker_build
whose image no container uses, a k8s_resource naming no workload, a port forward to a
container port nobody declares, an unknown resource dependency or object, absolute paths.

Used by tests/deploy/test_tiltfile.py; also a command line tool:
    python .ci/deploy/tiltfile_check.py [--postgres] [--env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl
import yaml

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
BLOB = "__tilt_blob__"

# Tilt's namespaces are attribute lookups (`os.getenv`), which Python values cannot offer
# through starlark-pyo3's JSON-like conversion: they are structs built in this prelude.
PRELUDE = """
os = struct(
    getenv = _os_getenv,
    environ = _os_environ(),
    path = struct(exists = _os_path_exists, join = _os_path_join, basename = _os_path_basename,
                  dirname = _os_path_dirname, abspath = _os_path_abspath),
    name = "posix",
)
config = struct(
    define_bool = _config_define_bool,
    define_string = _config_define_string,
    define_string_list = _config_define_string_list,
    parse = _config_parse,
    main_path = "Tiltfile",
    tilt_subcommand = "up",
)
sys = struct(argv = ["tilt", "up"], executable = "tilt")
"""

EXTENSIONS = {
    # ext://restart_process wraps docker_build and replaces the entrypoint.
    "restart_process": "def docker_build_with_restart(ref, context, entrypoint, **kwargs):\n"
    "    _record_restart(ref, entrypoint)\n"
    "    return docker_build(ref, context, **kwargs)\n",
}


def _blob_text(value: Any) -> str:
    if isinstance(value, dict) and BLOB in value:
        return value[BLOB]
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a Blob or a string, got {type(value).__name__}")


@dataclass
class TiltRun:
    """What one evaluation of the Tiltfile declared."""

    root: Path
    args: dict[str, Any]
    env: dict[str, str]
    docker_builds: list[dict] = field(default_factory=list)
    restarts: dict[str, list[str]] = field(default_factory=dict)
    objects: list[dict] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)
    local_resources: list[dict] = field(default_factory=list)
    paths: list[tuple[str, str]] = field(default_factory=list)
    defined_flags: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ stubs
    def _path(self, what: str, path: str) -> str:
        self.paths.append((what, path))
        return path

    def docker_build(self, ref, context, dockerfile="Dockerfile", build_args=None, only=None,
                     ignore=None, live_update=None, target="", **_kwargs):
        self._path("docker_build context", context)
        self._path("docker_build dockerfile", dockerfile)
        for path in only or []:
            self._path("docker_build only", os.path.join(context, path))
        for step in live_update or []:
            if step.get("step") == "sync":
                self._path("live_update sync", step["local"])
                if not step["remote"].startswith("/"):
                    raise ValueError(f"sync target must be a container path: {step['remote']}")
            elif step.get("step") == "fall_back_on":
                for path in step["files"]:
                    self._path("live_update fall_back_on", path)
        self.docker_builds.append(
            {"ref": ref, "context": context, "dockerfile": dockerfile, "build_args": build_args or {},
             "only": only or [], "live_update": live_update or [], "target": target}
        )

    def record_restart(self, ref, entrypoint):
        self.restarts[ref] = list(entrypoint)

    def k8s_yaml(self, yaml_, allow_duplicates=False):
        sources = yaml_ if isinstance(yaml_, list) else [yaml_]
        for source in sources:
            if isinstance(source, dict):
                text = _blob_text(source)
            else:
                path = self.root / self._path("k8s_yaml", source)
                # A missing file is reported by problems(), with the others.
                text = path.read_text() if path.is_file() else ""
            self.objects.extend(doc for doc in yaml.safe_load_all(text) if doc)

    def k8s_resource(self, workload="", new_name="", port_forwards=None, resource_deps=None,
                     objects=None, labels=None, links=None, **kwargs):
        forwards = port_forwards if isinstance(port_forwards, list) else (
            [port_forwards] if port_forwards is not None else [])
        self.resources.append(
            {"workload": workload, "new_name": new_name, "port_forwards": forwards,
             "resource_deps": resource_deps or [], "objects": objects or [], **kwargs}
        )

    def local_resource(self, name, cmd="", deps=None, serve_cmd="", resource_deps=None, **kwargs):
        for dep in deps or []:
            self._path("local_resource deps", dep)
        self.local_resources.append({"name": name, "resource_deps": resource_deps or []})

    def read_file(self, path, default=None):
        full = self.root / self._path("read_file", path)
        if not full.is_file():
            return {BLOB: default or ""}
        return {BLOB: full.read_text()}

    def config_parse(self):
        return {name: self.args.get(name, False if kind == "bool" else ([] if kind == "list" else ""))
                for name, kind in self.defined_flags.items()}

    # ------------------------------------------------------------------ evaluation
    def callables(self) -> dict[str, Any]:
        def define(kind):
            def _define(name, args=False, usage=""):
                self.defined_flags[name] = kind
            return _define

        def fail(message):
            raise RuntimeError(f"fail(): {message}")

        return {
            "docker_build": self.docker_build,
            "_record_restart": self.record_restart,
            "k8s_yaml": self.k8s_yaml,
            "k8s_resource": self.k8s_resource,
            "local_resource": self.local_resource,
            "read_file": self.read_file,
            "watch_file": lambda path: self._path("watch_file", path) and None,
            "blob": lambda text: {BLOB: text},
            "encode_yaml": lambda obj: {BLOB: yaml.safe_dump(obj, sort_keys=False)},
            "encode_yaml_stream": lambda objs: {BLOB: yaml.safe_dump_all(objs, sort_keys=False)},
            "decode_yaml": lambda value: yaml.safe_load(_blob_text(value)),
            "decode_yaml_stream": lambda value: [d for d in yaml.safe_load_all(_blob_text(value)) if d],
            "encode_json": lambda obj: {BLOB: json.dumps(obj)},
            "decode_json": lambda value: json.loads(_blob_text(value)),
            "sync": lambda local_path, remote_path: {"step": "sync", "local": local_path, "remote": remote_path},
            "run": lambda cmd, trigger=None, echo_off=False: {"step": "run", "cmd": cmd, "trigger": trigger or []},
            "fall_back_on": lambda files: {"step": "fall_back_on", "files": files if isinstance(files, list) else [files]},
            "restart_container": lambda: {"step": "restart_container"},
            "link": lambda url, name="": {"url": url, "name": name},
            "port_forward": lambda local_port, container_port=None, name="", link_path="", host="":
                f"{local_port}:{container_port or local_port}",
            "allow_k8s_contexts": lambda contexts: None,
            "update_settings": lambda **kwargs: None,
            "default_registry": lambda *args, **kwargs: None,
            "local": lambda *args, **kwargs: {BLOB: ""},  # never runs commands
            "fail": fail,
            "warn": lambda message: None,
            "_os_getenv": lambda key, default=None: self.env.get(key, default),
            "_os_environ": lambda: dict(self.env),
            "_os_path_exists": lambda path: (self.root / path).exists(),
            "_os_path_join": lambda *parts: os.path.join(*parts),
            "_os_path_basename": os.path.basename,
            "_os_path_dirname": os.path.dirname,
            "_os_path_abspath": lambda path: str(self.root / path),
            "_config_define_bool": define("bool"),
            "_config_define_string": define("string"),
            "_config_define_string_list": define("list"),
            "_config_parse": self.config_parse,
        }


def _globals() -> sl.Globals:
    return sl.Globals.extended_by([sl.LibraryExtension.StructType, sl.LibraryExtension.Print,
                                   sl.LibraryExtension.Json])


def _frozen(name: str, source: str, callables: dict[str, Any], loader: sl.FileLoader | None) -> sl.FrozenModule:
    module = sl.Module()
    for key, fn in callables.items():
        module.add_callable(key, fn)
    sl.eval(module, sl.parse(name, source, sl.Dialect.extended()), _globals(), loader)
    return module.freeze()


def evaluate(root: Path, args: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> TiltRun:
    """Run ``root/Tiltfile`` with stub builtins; raises ``starlark.StarlarkError`` on errors."""
    run = TiltRun(root=root, args=args or {}, env=env or {})
    callables = run.callables()
    prelude = _frozen("@tilt_prelude", PRELUDE, callables, None)

    def load(name: str) -> sl.FrozenModule:
        if name == "@tilt_prelude":
            return prelude
        if name.startswith("ext://"):
            ext = name.removeprefix("ext://")
            if ext not in EXTENSIONS:
                raise ValueError(f"no stub for Tilt extension {name}")
            return _frozen(name, EXTENSIONS[ext], callables, sl.FileLoader(load))
        return _frozen(name, (root / run._path("load", name)).read_text(), callables, sl.FileLoader(load))

    source = (root / "Tiltfile").read_text()
    first, _, rest = source.partition("\n")
    if first.strip() and not first.lstrip().startswith("#"):
        raise ValueError("the Tiltfile's first line must be a comment (the checker binds Tilt's namespaces there)")
    # Same line count, so error positions match the file.
    source = 'load("@tilt_prelude", "os", "config", "sys")\n' + rest
    module = sl.Module()
    for key, fn in callables.items():
        if not key.startswith("_"):
            module.add_callable(key, fn)
    sl.eval(module, sl.parse("Tiltfile", source, sl.Dialect.extended()), _globals(), sl.FileLoader(load))
    return run


def _workloads(run: TiltRun) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in run.objects if obj.get("kind") in WORKLOAD_KINDS}


def _pod_spec(obj: dict) -> dict:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def images(run: TiltRun) -> dict[str, list[str]]:
    """Container images of the registered workloads, by workload name."""
    return {
        name: [c["image"] for c in _pod_spec(obj).get("containers", []) + _pod_spec(obj).get("initContainers", [])]
        for name, obj in _workloads(run).items()
    }


def _image_matches(ref: str, image: str) -> bool:
    # Tilt matches a docker_build ref against image names ignoring the tag.
    name = image.split("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name == ref


def problems(run: TiltRun) -> list[str]:
    """Every reference of the evaluated Tiltfile that does not resolve."""
    found: list[str] = []
    for what, path in run.paths:
        if os.path.isabs(path):
            found.append(f"{what}: absolute path {path!r} (only paths relative to the Tiltfile)")
        elif not (run.root / path).exists():
            found.append(f"{what}: {path!r} does not exist")
    workloads = _workloads(run)
    all_images = [image for imgs in images(run).values() for image in imgs]
    for build in run.docker_builds:
        if not any(_image_matches(build["ref"], image) for image in all_images):
            found.append(f"docker_build {build['ref']!r}: no container uses this image")
        for name in build["build_args"]:
            dockerfile = (run.root / build["context"] / build["dockerfile"]).read_text() if (
                run.root / build["context"] / build["dockerfile"]).exists() else ""
            if f"ARG {name}" not in dockerfile:
                found.append(f"docker_build {build['ref']!r}: build arg {name} is not declared in the Dockerfile")
    object_ids = {f"{obj['metadata']['name']}:{obj['kind'].lower()}" for obj in run.objects}
    names = set(workloads) | {r["name"] for r in run.local_resources}
    for resource in run.resources:
        name = resource["workload"]
        if name not in workloads:
            found.append(f"k8s_resource {name!r}: no such workload in the registered YAML")
            continue
        names.add(resource["new_name"] or name)
        declared = {p["containerPort"] for c in _pod_spec(workloads[name])["containers"] for p in c.get("ports", [])}
        for forward in resource["port_forwards"]:
            container_port = int(str(forward).split(":")[-1])
            if container_port not in declared:
                found.append(f"k8s_resource {name!r}: port forward {forward} targets undeclared port {container_port}")
        for ref in resource["objects"]:
            if ref.lower() not in object_ids:
                found.append(f"k8s_resource {name!r}: object {ref!r} is not registered")
    for resource in run.resources + run.local_resources:
        for dep in resource["resource_deps"]:
            if dep not in names:
                found.append(f"resource {resource.get('workload') or resource.get('name')!r}: unknown dependency {dep!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    options = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in options.env)
    run = evaluate(options.root, {"postgres": options.postgres}, env)
    found = problems(run)
    for problem in found:
        print("PROBLEM:", problem)
    print(f"Tiltfile: {len(run.docker_builds)} image(s), {len(run.objects)} object(s), "
          f"{len(run.resources)} resource(s), {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
