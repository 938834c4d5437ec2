"""The Tiltfile, evaluated without Tilt (starlark-rust with stub builtins, .ci/deploy/):
each config branch runs, and everything it references exists and matches the manifests."""

from __future__ import annotations

import shutil

import pytest

from .conftest import ROOT

BRANCHES = {"sqlite": {}, "postgres": {"postgres": True}}


@pytest.fixture(scope="module", params=list(BRANCHES))
def run(request, tiltfile_check):
    return tiltfile_check.evaluate(ROOT, BRANCHES[request.param], {"OPENAI_API_KEY": "sk-from-env"})


def resource(run, name):
    return next(r for r in run.resources if r["workload"] == name)


def secret(run, name):
    return next(o for o in run.objects if o["kind"] == "Secret" and o["metadata"]["name"] == name)


def test_every_reference_resolves(run, tiltfile_check):
    assert tiltfile_check.problems(run) == []


def test_service_image_is_built_from_the_dockerfile(run, tiltfile_check):
    (build,) = run.docker_builds
    assert build["dockerfile"] == "Dockerfile"
    assert tiltfile_check.images(run)["llm-backend"] == [build["ref"]]


def test_live_update_syncs_the_python_sources_into_the_image_app_dir(run):
    (build,) = run.docker_builds
    syncs = {step["local"]: step["remote"] for step in build["live_update"] if step["step"] == "sync"}
    assert syncs["llm_backend"] == "/app/llm_backend"
    assert run.restarts[build["ref"]][-2:] == ["llm-backend", "serve"]


def test_ports_8000_and_3000_are_forwarded(run):
    assert resource(run, "llm-backend")["port_forwards"] == ["8000:8000"]
    assert resource(run, "chatbot-ui")["port_forwards"] == ["3000:3000"]


def test_upstream_key_comes_from_the_environment_into_the_secret(run):
    assert secret(run, "llm-backend-secrets")["stringData"]["openai-api-key"] == "sk-from-env"


def test_chatbot_ui_key_is_one_of_the_service_keys(run):
    data = secret(run, "llm-backend-secrets")["stringData"]
    assert data["chatbot-ui-api-key"] in data["api-keys"].split(",")


def test_postgres_runs_only_behind_the_config_flag(tiltfile_check):
    without = tiltfile_check.evaluate(ROOT, {}, {})
    with_postgres = tiltfile_check.evaluate(ROOT, {"postgres": True}, {})
    assert "postgres" not in {r["workload"] for r in without.resources}
    assert resource(with_postgres, "llm-backend")["resource_deps"] == ["postgres"]
    assert "llm-backend-postgres" in {o["metadata"]["name"] for o in with_postgres.objects if o["kind"] == "Secret"}


# The checker itself must catch broken Tiltfiles, or the tests above prove nothing.
def mutated(tmp_path, old, new):
    for name in ("Tiltfile", "Dockerfile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("k8s", "llm_backend", "openapi"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    text = (tmp_path / "Tiltfile").read_text()
    assert old in text
    (tmp_path / "Tiltfile").write_text(text.replace(old, new))
    return tmp_path


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('port_forwards=["3000:3000"]', 'port_forwards=["3000:3001"]', "undeclared port 3001"),
        ('k8s_yaml("k8s/chatbot-ui.yaml")', 'k8s_yaml("k8s/chatbotui.yaml")', "does not exist"),
        ('resource_deps=["llm-backend"]', 'resource_deps=["llm-backed"]', "unknown dependency"),
        ('    "llm-backend",\n    ".",', '    "llm-backend-dev",\n    ".",', "no container uses this image"),
        ('sync("llm_backend",', 'sync("/home/someone/llm_backend",', "absolute path"),
    ],
    ids=["port", "file", "dependency", "image", "absolute-path"],
)
def test_checker_reports_a_broken_reference(tmp_path, tiltfile_check, old, new, problem):
    run = tiltfile_check.evaluate(mutated(tmp_path, old, new), {"postgres": True}, {})
    assert any(problem in found for found in tiltfile_check.problems(run))


def test_checker_reports_a_misspelled_builtin_with_its_line(tmp_path, tiltfile_check):
    root = mutated(tmp_path, "os.getenv(\"OPENAI_API_KEY\"", "os.getnv(\"OPENAI_API_KEY\"")
    with pytest.raises(Exception, match=r"getnv[\s\S]*Tiltfile:\d+"):
        tiltfile_check.evaluate(root, {}, {})
