"""The default models' files, for tests that drive an engine directly."""

import os
from pathlib import Path

from llm_backend.backends.llama.sources import resolve_gguf
from llm_backend.settings import Settings
from tests.support.server import SHARED_CACHE


def default_gguf() -> Path:
    settings = Settings()
    return resolve_gguf(settings.models[0], settings.model_cache_dir)


def whisper_dir() -> Path:
    """Whisper base (the default speech-to-text model), joined from its PyPI parts once per
    test run (in the run's shared folder, as the servers find it)."""
    from llm_backend.backends.audio.sources import whisper_model_dir

    shared = os.environ.get(SHARED_CACHE)
    settings = Settings(models_dir=Path(shared) / "models") if shared else Settings()
    return whisper_model_dir(settings.transcription_model_packages, settings.model_cache_dir)
