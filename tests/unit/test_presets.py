"""What the config file presets for a model id: sampling defaults and personas."""

from __future__ import annotations

import pytest

from llm_backend.backends.presets import presets, with_defaults
from llm_backend.errors import OpenAIError
from llm_backend.settings import ModelConfig

HI = [{"role": "user", "content": "hi"}]


def model(**fields) -> ModelConfig:
    return ModelConfig.model_validate({"id": "tiny", "path": "/models/tiny.gguf", **fields})


PIRATE = {"id": "pirate", "system_prompt": "Talk like a pirate.", "defaults": {"temperature": 1.5}}
TINY = model(aliases=["small"], defaults={"temperature": 0.2, "max_tokens": 64}, personas=[PIRATE])
TABLE = presets([TINY])


def test_every_id_alias_and_persona_is_a_public_id():
    assert set(TABLE) == {"tiny", "small", "tiny:pirate"}
    assert TABLE["small"].model is TINY and TABLE["small"].persona is None
    assert TABLE["tiny:pirate"].persona.id == "pirate"


def test_model_defaults_fill_what_the_request_leaves_out():
    request = TABLE["tiny"].chat_request({"messages": HI})
    assert (request["temperature"], request["max_tokens"]) == (0.2, 64)


def test_a_value_the_request_sends_wins_over_the_default():
    assert TABLE["tiny"].chat_request({"messages": HI, "temperature": 0.9})["temperature"] == 0.9


def test_a_null_in_the_request_counts_as_left_out():
    assert TABLE["tiny"].chat_request({"messages": HI, "temperature": None})["temperature"] == 0.2


def test_a_max_tokens_default_yields_to_max_completion_tokens():
    assert "max_tokens" not in with_defaults({"max_completion_tokens": 5}, {"max_tokens": 64})


def test_persona_defaults_override_the_models_defaults():
    request = TABLE["tiny:pirate"].chat_request({"messages": HI})
    assert (request["temperature"], request["max_tokens"]) == (1.5, 64)


def test_a_persona_puts_its_system_prompt_first():
    request = TABLE["tiny:pirate"].chat_request({"messages": [{"role": "system", "content": "Be brief."}, *HI]})
    assert [message["content"] for message in request["messages"]] == ["Talk like a pirate.", "Be brief.", "hi"]


def test_presets_leave_the_callers_request_unchanged():
    original = {"messages": list(HI)}
    TABLE["tiny:pirate"].chat_request(original)
    assert original == {"messages": HI}


def test_completions_get_the_models_defaults():
    assert TABLE["small"].completion_request({"prompt": "x"}, "small")["temperature"] == 0.2


@pytest.mark.parametrize("apply", [lambda p: p.completion_request({"prompt": "x"}, "tiny:pirate"), lambda p: p.embedding_request({"input": "x"}, "tiny:pirate")])
def test_a_persona_outside_chat_is_not_found_as_openai_says_for_chat_models(apply):
    with pytest.raises(OpenAIError) as raised:
        apply(TABLE["tiny:pirate"])
    assert raised.value.status == 404 and raised.value.param == "model"
    assert "is a chat model" in raised.value.message


def test_embeddings_of_a_model_without_them_are_refused_naming_the_model():
    table = presets([model(embedding=False)])
    with pytest.raises(OpenAIError) as raised:
        table["tiny"].embedding_request({"input": "x"}, "tiny")
    assert (raised.value.status, raised.value.param, raised.value.code) == (400, "model", "model_not_supported")


def test_embedding_requests_pass_through_unchanged():
    request = {"input": "x", "dimensions": 576}
    assert TABLE["small"].embedding_request(request, "small") == request
