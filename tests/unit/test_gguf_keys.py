"""ggml's GGUF reader through ctypes (backends/llama/gguf_keys.py): the keys of the packaged
SmolLM2 as llama.cpp reads them, a wrong type refused, a file not GGUF refused."""

from __future__ import annotations

import llama_cpp
import pytest

from llm_backend.backends.llama.gguf_keys import GGUFKeys
from tests.support.models import default_gguf


def test_the_vocabulary_is_read_as_llama_cpp_reads_it():
    model = llama_cpp.Llama(str(default_gguf()), vocab_only=True, verbose=False)
    with GGUFKeys(default_gguf()) as keys:
        tokens = keys.strings("tokenizer.ggml.tokens")
        types = keys.int32s("tokenizer.ggml.token_type")
        assert keys.string("tokenizer.ggml.model") == "gpt2"
        assert keys.integer("tokenizer.ggml.eos_token_id") == model.token_eos()
        assert len(keys.strings("tokenizer.ggml.merges")) > 40_000
        assert "tokenizer.ggml.tokens" in keys and "no.such.key" not in keys
    assert len(tokens) == len(types) == model.n_vocab()
    assert [tokens[i].encode() for i in (0, 260, 1000)] == [model._model.token_get_text(i).encode() for i in (0, 260, 1000)]


def test_a_key_of_another_type_is_refused_not_misread():
    with GGUFKeys(default_gguf()) as keys:
        with pytest.raises(TypeError):
            keys.int32s("tokenizer.ggml.tokens")
        with pytest.raises(TypeError):
            keys.integer("tokenizer.ggml.model")
        with pytest.raises(KeyError):
            keys.string("no.such.key")


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match="not a GGUF file"):
        GGUFKeys(tmp_path / "model.gguf")
