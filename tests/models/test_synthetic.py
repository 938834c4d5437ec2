"""A synthetic model served for real: ``source: synthetic://qwen2.5-0.5b`` written on first
use (a real 0.5B model's size), listed saying that its answers mean nothing, answering, its
logits finite, and reused by the next start; the small test shape for what the writer
promises (the same bytes each time, one writer at a time, no start on a full disk)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import shutil
import threading
from collections import namedtuple
from pathlib import Path

import httpx
import llama_cpp
import numpy as np
import pytest

from llm_backend.backends.llama import synthetic
from llm_backend.backends.llama.sources import ModelSourceError, resolve_gguf
from llm_backend.backends.llama.synthetic import Synthetic
from llm_backend.settings.model import ModelConfig
from llm_backend.settings.shapes import SHAPES
from tests.support.models import default_gguf
from tests.support.server import LiveServer

SHAPE = "qwen2.5-0.5b"
CONFIG = """models:
  - id: qwen-synthetic
    source: synthetic://qwen2.5-0.5b
    n_ctx: 512
    parallel: 2
    load: eager
embedding_model: ''
"""
WRITING = "writing a synthetic model"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic-models")


@pytest.fixture(scope="module")
def first(models_dir, tmp_path_factory):
    """A server whose start writes the model (ready: written and loaded)."""
    live = LiveServer(tmp_path_factory.mktemp("first"), env={"LLM_BACKEND_MODELS_DIR": str(models_dir)}, config=CONFIG)
    yield live.start(timeout=300)
    live.stop()


def gguf(models_dir: Path) -> Path:
    return models_dir / "synthetic" / f"{SHAPE}-v{synthetic.GENERATOR_VERSION}" / "model.gguf"


def test_the_model_is_written_on_first_use_at_a_real_0_5b_models_size(first, models_dir):
    assert gguf(models_dir).stat().st_size >= 200_000_000  # 396 MB: Qwen2.5-0.5B's published Q4_K_M is 398 MB
    assert first.log().count(WRITING) == 1


def test_it_is_listed_saying_that_its_answers_mean_nothing(first):
    card = next(m for m in httpx.get(first.api + "/models").json()["data"] if m["id"] == "qwen-synthetic")
    assert card["owned_by"] == "llm-backend:synthetic"
    assert "random weights in Qwen2.5-0.5B-Instruct's shapes" in card["description"]
    assert "its answers mean nothing" in card["description"]


def test_the_log_of_its_load_says_that_its_answers_mean_nothing(first):
    lines = [json.loads(line) for line in first.log().splitlines() if "synthetic model: random weights" in line]
    assert lines and "its answers mean nothing" in lines[0]["weights"] and lines[0]["level"] == "warning"


def test_it_answers_a_chat_with_text(first):
    answer = httpx.post(first.api + "/chat/completions", timeout=120, json={
        "model": "qwen-synthetic", "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0, "max_tokens": 8})
    assert answer.status_code == 200
    choice = answer.json()["choices"][0]
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"].strip()
    assert answer.json()["usage"]["completion_tokens"] > 0


def test_its_logits_are_finite_and_of_unit_spread(first, models_dir):
    llm = llama_cpp.Llama(str(gguf(models_dir)), n_ctx=128, n_batch=16, n_threads=2, logits_all=True, verbose=False)
    assert llm.n_vocab() == 151936  # Qwen's vocabulary's size, SmolLM2's tokens padded
    tokens = llm.tokenize(b"The capital of France is")
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)])
    assert np.isfinite(logits).all()
    assert 0.5 < logits.std() < 2


def test_a_second_start_reuses_the_file(first, models_dir, tmp_path):
    before = gguf(models_dir).stat()
    second = LiveServer(tmp_path / "second", env={"LLM_BACKEND_MODELS_DIR": str(models_dir)}, config=CONFIG).start(timeout=120)
    second.stop()
    assert WRITING not in second.log()
    assert "synthetic model: random weights" in second.log()
    after = gguf(models_dir).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


# --- the writer, on the test shape (20 MB) ----------------------------------------------------

TINY = SHAPES["test-tiny-moe"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The test shape written once for the tests that only read it (a write: 3.8 CPU-s)."""
    return Synthetic(tmp_path_factory.mktemp("tiny")).resolve(TINY, default_gguf)


def test_the_file_is_the_same_each_time_it_is_written(tiny, tmp_path):
    again = Synthetic(tmp_path).resolve(TINY, default_gguf)
    assert again != tiny and sha256(again) == sha256(tiny)


def test_two_loads_at_once_write_the_file_once(tmp_path, caplog):
    caplog.set_level("INFO", logger=synthetic.__name__)
    found, start = [], threading.Barrier(2)

    def load() -> None:
        start.wait()
        found.append(Synthetic(tmp_path).resolve(TINY, default_gguf))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found[0] == found[1] and found[0].is_file()
    assert [r.getMessage() for r in caplog.records].count(WRITING) == 1
    assert not list(found[0].parent.glob("*.partial"))


def test_a_disk_without_room_is_refused_before_a_byte_is_written(tmp_path, monkeypatch):
    # A mock: a disk this full cannot be made here for real (no small filesystem to mount).
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 10**6, 10**6))
    with pytest.raises(ModelSourceError, match=r"model 'm': synthetic://test-tiny-moe needs 0\.1 GB under .*, 0\.0 GB are free"):
        resolve_gguf(ModelConfig(id="m", source="synthetic://test-tiny-moe"), tmp_path)
    assert not Synthetic(tmp_path).path(TINY).exists()


def test_without_the_tokenizer_package_the_load_says_what_to_install(tmp_path, monkeypatch):
    from llm_backend.backends.llama import sources

    monkeypatch.setattr(sources, "TOKENIZER_PACKAGE", "llm-no-such-package")
    with pytest.raises(ModelSourceError, match="package 'llm-no-such-package' is not installed"):
        resolve_gguf(ModelConfig(id="m", source="synthetic://test-tiny-moe"), tmp_path)


def requantized(path: Path, out: Path) -> Path:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, True, 2
    assert llama_cpp.llama_model_quantize(str(path).encode(), str(out).encode(), ctypes.byref(params)) == 0
    return out


def test_llama_cpps_own_q4_k_m_quantizer_keeps_every_tensors_type(first, models_dir, tiny, tmp_path):
    # llama.cpp's quantizer asked for Q4_K_M picks each tensor's type by its own rules and
    # copies a tensor already of that type: the same file size means the same types (each type
    # has its own bytes per weight), for a dense model with 896-wide rows (the fallbacks) and
    # for a mixture of experts.
    for path in (gguf(models_dir), tiny):
        assert requantized(path, tmp_path / "requantized.gguf").stat().st_size == path.stat().st_size
