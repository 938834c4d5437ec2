"""A Messages request as the chat request it becomes, and a chat answer as the Message (or
events) it is shown as (families/messages/serving/): the rules docs/MESSAGES.md's table states."""

from __future__ import annotations

import asyncio

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.families.messages.serving import answer
from llm_backend.families.messages.serving.request import chat_request

SIGN = "signed:{}".format  # the service seals the thinking (serving/responses/reasoning.py)


def test_system_blocks_system_turns_tool_use_and_tool_results_become_chats_messages_in_order():
    body = {
        "model": "m", "max_tokens": 10,
        "system": [{"type": "text", "text": "One.", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "Two."}],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "Let me see."},
                                              {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "text", "text": "and?"},
                                         {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "no city"}], "is_error": True}]},
        ],
    }
    chat = chat_request(body, stream=False)
    assert chat["max_completion_tokens"] == 10 and "stream" not in chat
    assert chat["messages"] == [
        {"role": "system", "content": "One.\n\nTwo."},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me see.",
         "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no city"},
        {"role": "user", "content": [{"type": "text", "text": "and?"}]},
    ]


def test_a_tool_results_images_follow_the_tool_messages_in_a_user_message():
    """Chat's tool messages hold text only: a tool result's images (Claude Code's Read of a
    picture) go in the user message after them, before the turn's own parts (issue #60)."""
    picture = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a.png:"}, picture]}
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "Look at a.png"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.png"}}]},
        {"role": "user", "content": [result, {"type": "text", "text": "What is it?"}]},
    ]}
    messages = chat_request(body, stream=False)["messages"]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "a.png:"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}},
            {"type": "text", "text": "What is it?"},
        ]},
    ]


def test_a_tool_results_document_block_is_refused_naming_it():
    result = {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "x"}, {"type": "document", "source": {}}]}
    with pytest.raises(OpenAIError) as raised:
        chat_request({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [result]}]}, False)
    assert raised.value.status == 400 and raised.value.param == "messages[0].content[0].content[1]"


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "w"}, {"type": "function", "function": {"name": "w"}}),
])
def test_tool_choice_and_tools(choice, expected):
    tools = [{"name": "w", "description": "d", "input_schema": {"type": "object"}},
             {"name": "later", "input_schema": {"type": "object"}, "defer_loading": True}]
    chat = chat_request({"model": "m", "max_tokens": 1, "messages": [], "tools": tools, "tool_choice": {**choice, "disable_parallel_tool_use": True}}, True)
    assert chat["tool_choice"] == expected and chat["parallel_tool_calls"] is False
    assert chat["tools"] == [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}, "description": "d"}}]
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


def test_sampling_stops_user_and_reasoning_effort():
    chat = chat_request({"model": "m", "max_tokens": 1, "messages": [], "temperature": 0.5, "top_p": 0.9, "top_k": 5,
                         "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
                         "thinking": {"type": "enabled", "budget_tokens": 8000}}, False)
    assert (chat["temperature"], chat["top_p"], chat["top_k"], chat["stop"], chat["user"]) == (0.5, 0.9, 5, ["END"], "u1")
    assert chat["reasoning_effort"] == "medium"
    adaptive = chat_request({"model": "m", "max_tokens": 1, "messages": [], "thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, False)
    assert adaptive["reasoning_effort"] == "xhigh"
    assert "reasoning_effort" not in chat_request({"model": "m", "max_tokens": 1, "messages": [], "thinking": {"type": "adaptive"}}, False)


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [], "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}, "context_management.edits[0].type"),
    ({"messages": [], "tool_choice": {"type": "any"}}, "tool_choice"),
    ({"messages": [], "thinking": {"type": "disabled"}, "output_config": {"effort": "low"}}, "output_config.effort"),
])
def test_what_cannot_be_honoured_is_refused_naming_it(body, param):
    with pytest.raises(OpenAIError) as raised:
        chat_request({"model": "m", "max_tokens": 1, **body}, False)
    assert raised.value.status == 400 and raised.value.param == param


def test_a_chat_completion_is_a_message_with_anthropics_stop_reason_and_usage():
    completion = {
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"content": "Sure.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Rome"}'}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 20}},
    }
    message = answer.message(completion, "m", SIGN)
    assert message["content"] == [{"type": "text", "text": "Sure."}, {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Rome"}}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("tool_use", None)
    assert message["usage"] == {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20, "output_tokens": 7}
    completion["choices"][0].update(finish_reason="length")
    assert answer.message(completion, "m", SIGN)["stop_reason"] == "max_tokens"
    completion["choices"][0].update(finish_reason="stop", stop_reason="END")  # vLLM names the stop it matched
    assert (answer.message(completion, "m", SIGN)["stop_reason"], answer.message(completion, "m", SIGN)["stop_sequence"]) == ("stop_sequence", "END")


def test_chunks_are_anthropics_event_sequence():
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
        {"choices": [{"index": 0, "delta": {"content": " there"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "w", "arguments": '{"ci'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "X"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}},
    ]

    async def source():
        for chunk in chunks:
            yield chunk

    async def collect():
        return [event async for event in answer.events(source(), "m", SIGN)]

    events = asyncio.run(collect())
    assert [name for name, _ in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]
    assert events[6][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "w", "input": {}} and events[6][1]["index"] == 1
    assert events[8][1]["delta"] == {"type": "input_json_delta", "partial_json": 'ty": "X"}'}
    assert events[10][1]["delta"]["stop_reason"] == "tool_use" and events[10][1]["usage"]["output_tokens"] == 4


def test_a_failure_mid_stream_is_an_error_event():
    async def source():
        yield {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
        raise OpenAIError(503, "The engine went away.")

    async def collect():
        return [event async for event in answer.events(source(), "m", SIGN)]

    name, body = asyncio.run(collect())[-1]
    assert (name, body) == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "The engine went away."}})


def test_reasoning_is_a_signed_thinking_block_before_the_text():
    completion = {"choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": "9.8.", "reasoning_content": "0.80 > 0.11"}}]}
    content = answer.message(completion, "m", SIGN)["content"]
    assert content == [{"type": "thinking", "thinking": "0.80 > 0.11", "signature": "signed:0.80 > 0.11"},
                       {"type": "text", "text": "9.8."}]


def test_streamed_reasoning_is_thinking_deltas_then_its_signature_then_the_text_block():
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "reasoning_content": "0.80 "}}]},
        {"choices": [{"index": 0, "delta": {"content": None, "reasoning": "> 0.11"}}]},  # vLLM's newer name
        {"choices": [{"index": 0, "delta": {"content": "9.8."}, "finish_reason": "stop"}]},
    ]

    async def source():
        for chunk in chunks:
            yield chunk

    async def collect():
        return [event async for event in answer.events(source(), "m", SIGN)]

    events = asyncio.run(collect())[2:-2]
    assert [(name, body.get("index"), (body.get("delta") or body.get("content_block") or {}).get("type")) for name, body in events] == [
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"), ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"), ("content_block_delta", 1, "text_delta"), ("content_block_stop", 1, None),
    ]
    assert events[3][1]["delta"]["signature"] == "signed:0.80 > 0.11"
