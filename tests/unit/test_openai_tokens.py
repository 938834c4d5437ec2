"""OpenAI's token ids read as their text (openai_tokens.py), and where requests use it."""

from __future__ import annotations

import random

import pytest

from llm_backend.backends.llama.params import completion_params, embedding_inputs
from llm_backend.errors import OpenAIError
from llm_backend.openai_tokens import encoding, text_of


def test_ids_of_any_text_read_back_as_that_text():
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    alphabet = "abcdefghij ÄÖü日本語🙂\n\t.,;:!?-_'\"0123456789"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 80)))
        assert text_of(encoding().encode(text), "input") == text


def test_special_tokens_are_ids_too_and_an_id_outside_the_encoding_is_refused_naming_it():
    assert text_of([100257], "prompt") == "<|endoftext|>"
    for bad in (100256, 100261, 100277, -1):
        with pytest.raises(OpenAIError) as raised:
            text_of([9906, bad], "input[2]")
        assert (raised.value.status, raised.value.param) == (400, "input[2]")


def test_completions_and_embeddings_read_token_arrays_as_text_unless_the_model_reads_its_own():
    ids = encoding().encode("Once upon a time")
    assert completion_params({"prompt": ids}, 512)["prompts"] == ["Once upon a time"]
    assert completion_params({"prompt": [ids, "plain"]}, 512)["prompts"] == ["Once upon a time", "plain"]
    assert completion_params({"prompt": ids}, 512, native=True)["prompts"] == [ids]
    assert embedding_inputs({"input": [ids, ids]}) == ["Once upon a time"] * 2
    with pytest.raises(OpenAIError) as raised:
        embedding_inputs({"input": [ids, [100300]]})
    assert raised.value.param == "input[1]"
