"""The default model's GGUF, for tests that drive the engine directly."""

from pathlib import Path

from llm_backend.backends.llama.sources import resolve_gguf
from llm_backend.settings import Settings


def default_gguf() -> Path:
    settings = Settings()
    return resolve_gguf(settings.models[0], settings.model_cache_dir)
