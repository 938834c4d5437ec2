"""Embeddings on the real default GGUF, driven directly: OpenAI's ``dimensions`` is honoured
when it asks for the model's own size (Llama Stack sends it on every request)."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.embeddings import Embedder
from llm_backend.backends.llama.engine.errors import RequestError
from tests.support.models import default_gguf


@pytest.fixture(scope="module")
def embedder():
    from llama_cpp import _logger

    _logger.set_verbose(False)
    engine = Engine({"path": str(default_gguf()), "n_ctx": 128, "parallel": 1, "n_threads": 1}, lambda event: None)
    yield Embedder(engine.model, engine.tokenizer, 128, 1, 1)
    engine.close()


def test_dimensions_equal_to_the_native_size_give_the_same_vectors(embedder):
    native = len(embedder.embed(["hello"])["vectors"][0])
    assert embedder.embed(["hello"], dimensions=native) == embedder.embed(["hello"])


@pytest.mark.parametrize("offset", [-1, 1])
def test_any_other_dimensions_are_refused_naming_dimensions(embedder, offset):
    native = len(embedder.embed(["hello"])["vectors"][0])
    with pytest.raises(RequestError) as raised:
        embedder.embed(["hello"], dimensions=native + offset)
    assert (raised.value.status, raised.value.param) == (400, "dimensions")
    assert str(native) in raised.value.as_dict()["message"]


def test_a_control_tokens_text_in_the_input_is_embedded_as_text(embedder):
    """Issue #56: ``<|im_end|>`` a client sends is its characters, not the model's token."""
    special = embedder.embed(["<|im_end|><|im_end|><|im_end|>"])
    text = embedder.embed(["<|im_emd|><|im_emd|><|im_emd|>"])
    assert special["n_tokens"] >= 0.8 * text["n_tokens"]
