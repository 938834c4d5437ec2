"""Reasoning on the HTTP surface, with the packaged model (SmolLM2, which does not reason):
it refuses an effort other than ``none`` as OpenAI's non-reasoning models do, in chat and in
Responses (named as each API names it), and accepts what Codex sends on every request
(``reasoning: {summary: "auto"}``, ``include: ["reasoning.encrypted_content"]``, its
reasoning items sent back with ``store: false``). No reasoning GGUF can be installed here:
the reasoning families' answers are tested through the parser and shaping layers
(tests/unit/test_reasoning_formats.py, test_responses_reasoning.py) and over a recorded
upstream (tests/upstream/test_reasoning_relay.py)."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL


def test_chat_reasoning_effort_high_is_refused_by_a_model_that_does_not_reason(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, reasoning_effort="high")
    error = refused.value.body
    assert error["param"] == "reasoning_effort" and error["code"] == "unsupported_parameter"
    assert error["message"] == "Unsupported parameter: 'reasoning_effort' is not supported with this model."


def test_chat_reasoning_effort_none_is_answered_without_reasoning_fields(client):
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, reasoning_effort="none")
    message = completion.choices[0].message.model_dump()
    assert message["content"] is not None and "reasoning_content" not in message and "reasoning" not in message


def test_responses_effort_high_is_refused_naming_reasoning_effort(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=16, reasoning={"effort": "high"})
    assert refused.value.body["param"] == "reasoning.effort"
    assert refused.value.body["message"] == "Unsupported parameter: 'reasoning.effort' is not supported with this model."


def test_a_background_response_with_an_effort_is_refused_before_it_is_stored(client):
    # A background response is stored, then answered in a task: the effort is checked before,
    # so the client gets the same 400 and no queued response that would only fail.
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=16, reasoning={"effort": "high"}, background=True)
    assert refused.value.body["param"] == "reasoning.effort" and refused.value.body["code"] == "unsupported_parameter"


def test_codexs_first_request_reasoning_fields_are_accepted(client):
    response = client.responses.create(
        model=MODEL, input="Hi", max_output_tokens=16, reasoning={"summary": "auto"},
        include=["reasoning.encrypted_content"], store=False, stream=True,
    )
    events = list(response)
    final = events[-1].response
    assert final.status in ("completed", "incomplete") and final.reasoning.summary == "auto"
    # A model that does not reason has no reasoning to show.
    assert [item.type for item in final.output] == ["message"]
    assert final.usage.output_tokens_details.reasoning_tokens == 0


def test_a_reasoning_item_sent_back_is_accepted_and_left_out_for_a_model_that_does_not_reason(client):
    response = client.responses.create(
        model=MODEL, max_output_tokens=16, store=False, include=["reasoning.encrypted_content"],
        input=[
            {"role": "user", "content": "Hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "A greeting."}], "encrypted_content": "not ours"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
        ],
    )
    assert response.status in ("completed", "incomplete") and response.output_text is not None


def test_an_earlier_answers_reasoning_content_sent_back_in_chat_is_accepted_on_an_assistant_message_only(client):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "A greeting."},
        {"role": "user", "content": "Bye"},
    ]
    assert client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4).choices[0].message.content is not None
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi", "reasoning_content": "x"}], max_tokens=4)
    assert refused.value.body["param"] == "messages[0].reasoning_content"
