"""A Messages request's lists and stop sequences within the lane's own bounds, counted
before anything of them reaches a backend (families/messages/serving/bounds.py, issue #56)."""

from __future__ import annotations

import pytest

from llm_backend.budgets import MAX_PARTS
from llm_backend.errors import OpenAIError
from llm_backend.families.messages.serving.bounds import MAX_STOP_BYTES, MAX_STOP_SEQUENCES, check

TEXT = {"type": "text", "text": "x"}


def body(**fields) -> dict:
    return {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}], **fields}


def refusal(request: dict) -> OpenAIError:
    with pytest.raises(OpenAIError) as raised:
        check(request)
    return raised.value


def test_two_hundred_thousand_stop_sequences_are_refused_naming_the_field():
    error = refusal(body(stop_sequences=[f"<stop-{index}>" for index in range(200_000)]))
    assert (error.status, error.param, error.code) == (400, "stop_sequences", "array_above_max_length")
    assert f"maximum length {MAX_STOP_SEQUENCES}" in error.message and "200000" in error.message


def test_stop_sequences_past_their_bytes_in_all_are_refused():
    each = MAX_STOP_BYTES // 4 + 1
    error = refusal(body(stop_sequences=["é" * (each // 2 + 1)] * 4))  # 2 bytes a character
    assert (error.status, error.param, error.code) == (400, "stop_sequences", "string_above_max_length")


def test_stop_sequences_at_their_bounds_pass():
    per = MAX_STOP_BYTES // MAX_STOP_SEQUENCES
    check(body(stop_sequences=[f"{index:0{per}d}" for index in range(MAX_STOP_SEQUENCES)]))


def test_a_system_prompts_blocks_count_with_every_messages_blocks():
    half = MAX_PARTS // 2 + 1
    request = body(system=[TEXT] * half, messages=[{"role": "user", "content": [TEXT] * half}])
    error = refusal(request)
    assert (error.status, error.code) == (400, "array_above_max_length") and error.param == "messages[0].content"


def test_a_tool_results_blocks_are_bounded():
    result = {"type": "tool_result", "tool_use_id": "t", "content": [TEXT] * (MAX_PARTS + 1)}
    error = refusal(body(messages=[{"role": "user", "content": [result]}]))
    assert (error.status, error.param) == (400, "messages[0].content[0].content")


def test_context_edits_are_bounded():
    edits = [{"type": "clear_thinking_20251015"}] * (MAX_PARTS + 1)
    error = refusal(body(context_management={"edits": edits}))
    assert (error.status, error.param) == (400, "context_management.edits")
