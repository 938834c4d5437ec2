"""The default models' files, for tests that drive an engine directly."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llm_backend.backends.llama.sources import resolve_gguf
from llm_backend.settings import Settings
from tests.support.server import SHARED_CACHE


def default_gguf() -> Path:
    settings = Settings()
    return resolve_gguf(settings.models[0], settings.model_cache_dir)


def _shared_settings() -> Settings:
    """Settings whose models dir is the run's shared folder (as the servers find it)."""
    shared = os.environ.get(SHARED_CACHE)
    return Settings(models_dir=Path(shared) / "models") if shared else Settings()


def tiny_gguf(shape: str = "test-tiny") -> Path:
    """``synthetic://test-tiny`` (settings/shapes.py): random weights, SmolLM2's vocabulary,
    about a tenth of its CPU a token. Written once per test run, in the run's shared folder
    (5 s), for tests of the engine's mechanics, where what a model answers is not the point.
    ``test-tiny-q4_1`` is the same in the default model's types, for tests that compare an
    answer with one computed alone (its kernels round no row by the rows beside it)."""
    from llm_backend.settings.model import ModelConfig

    return resolve_gguf(ModelConfig(id=shape, source=f"synthetic://{shape}"), _shared_settings().model_cache_dir)


# The model of a server for a test of plumbing (routing, caches, storage) that reads no
# answer: ``synthetic://test-tiny`` (``tiny_gguf``) with one pool for its sequences, as the
# default model has. On these cores it takes 1/26 of SmolLM2's CPU a prompt token and 1/9 a
# generated one (llama.cpp alone: 2,000 prompt tokens in 0.4 CPU-s against 10.4). What it
# answers is noise, seldom ended by the model, so such a test bounds ``max_tokens``.
TINY = "tiny"
TINY_CONFIG = f'models:\n  - {{id: {TINY}, source: "synthetic://test-tiny", kv_shared: true, load: eager}}\n'
# A ``logit_bias`` that makes every token of a greedy answer " the" (token 260 of SmolLM2's
# vocabulary, which test-tiny has): such an answer tokenizes back into the tokens decoded, so
# a conversation that carries it finds its prefix cached as far as a real model's answer
# lets it. Noise does not: its text tokenizes otherwise, and the exact reuse stops there.
ONE_WORD = {"260": 100}


def smolvlm_files() -> tuple[Path, Path]:
    """``synthetic://smolvlm-256m``: its language model and its projector (``mmproj.gguf``),
    written once per test run in the shared folder (315 MB, ~10 s)."""
    return vision_files("smolvlm-256m")


def vision_files(shape: str) -> tuple[Path, Path]:
    """A synthetic vision shape's language model and projector, written once per test run in
    the shared folder (``test-tiny-vision``: Gemma 3's projector, 16 tokens an image, 15 MB)."""
    from llm_backend.backends.llama.synthetic import Synthetic
    from llm_backend.settings.model import ModelConfig
    from llm_backend.settings.shapes import SHAPES

    cache = _shared_settings().model_cache_dir
    model = resolve_gguf(ModelConfig(id=shape, source=f"synthetic://{shape}"), cache)
    projector = Synthetic(cache).mmproj(SHAPES[shape])
    assert projector is not None
    return model, projector


def whisper_dir() -> Path:
    """Whisper base (the default speech-to-text model), joined from its PyPI parts once per
    test run (in the run's shared folder, as the servers find it)."""
    from llm_backend.backends.audio.sources import whisper_model_dir

    settings = _shared_settings()
    return whisper_model_dir(settings.transcription_model_packages, settings.model_cache_dir)


@contextlib.contextmanager
def llama_in_process(n_ctx: int, n_seq_max: int) -> Iterator[tuple[Any, Any, Any, Any]]:
    """llama.cpp itself on the default GGUF, with the engine's model and context settings
    (engine/llama_params.py), one thread, batches of 512: (model, context, a batch of 512
    rows, a greedy sampler chain), freed after. What tests compare the engine against."""
    import llama_cpp
    from llama_cpp import _internals

    from llm_backend.backends.llama.engine.llama_params import context_params, model_params

    model = _internals.LlamaModel(path_model=str(default_gguf()), params=model_params({}), verbose=False)
    params = context_params({})
    params.n_ctx, params.n_batch, params.n_ubatch, params.n_seq_max = n_ctx, 512, 512, n_seq_max
    params.n_threads = params.n_threads_batch = 1
    context = _internals.LlamaContext(model=model, params=params, verbose=False)
    batch = llama_cpp.llama_batch_init(512, 0, 1)
    greedy = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(greedy, llama_cpp.llama_sampler_init_greedy())
    try:
        yield model, context, batch, greedy
    finally:
        llama_cpp.llama_sampler_free(greedy)
        llama_cpp.llama_batch_free(batch)
