"""Tool calls from model text: whole answers and streamed deltas."""

from __future__ import annotations

import json

import pytest

from llm_backend.backends.llama.tools import ToolCallStream, parse_tool_calls, render_tool_history

NAMES = {"get_weather", "get_time"}
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "tags": ["a}", "b"]}}</tool_call>'


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_a_plain_answer_has_no_tool_calls():
    assert parse_tool_calls("The weather is nice.", NAMES) is None


def test_a_tool_call_answer_becomes_openai_tool_calls():
    (call,) = parse_tool_calls(CALL, NAMES)
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "c", "tags": ["a}", "b"]}


def test_an_unknown_function_is_not_a_tool_call():
    assert parse_tool_calls('<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', NAMES) is None


def test_parallel_calls_are_all_returned():
    text = CALL + '\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    assert [c["function"]["name"] for c in parse_tool_calls(text, NAMES)] == ["get_weather", "get_time"]


@pytest.mark.parametrize("size", [1, 2, 5, 17, 1000])
def test_streamed_tool_call_deltas_rebuild_the_call(size):
    stream = ToolCallStream(NAMES)
    deltas = [delta for piece in pieces(CALL, size) for delta in stream.feed(piece)] + stream.finish()
    assert all("tool_calls" in delta for delta in deltas)
    first = deltas[0]["tool_calls"][0]
    assert first["function"]["name"] == "get_weather" and first["id"].startswith("call_") and first["type"] == "function"
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas)
    assert json.loads(arguments) == {"city": "Paris", "unit": "c", "tags": ["a}", "b"]}
    assert stream.called


@pytest.mark.parametrize("size", [1, 3, 100])
def test_streamed_parallel_calls_get_their_own_index(size):
    text = CALL + '<tool_call>{"name": "get_time", "arguments": {"tz": "UTC"}}</tool_call>'
    stream = ToolCallStream(NAMES)
    deltas = [delta for piece in pieces(text, size) for delta in stream.feed(piece)]
    by_index: dict[int, str] = {}
    for delta in deltas:
        entry = delta["tool_calls"][0]
        by_index[entry["index"]] = by_index.get(entry["index"], "") + entry["function"]["arguments"]
    assert json.loads(by_index[1]) == {"tz": "UTC"}


@pytest.mark.parametrize("size", [1, 4])
def test_streamed_text_passes_through_unchanged(size):
    text = "<to be or not to be> is the question"
    stream = ToolCallStream(NAMES)
    deltas = [delta for piece in pieces(text, size) for delta in stream.feed(piece)] + stream.finish()
    assert "".join(delta["content"] for delta in deltas) == text
    assert not stream.called


def test_a_short_answer_held_back_as_a_possible_tag_is_released_at_the_end():
    stream = ToolCallStream(NAMES)
    assert stream.feed("<") == []
    assert stream.finish() == [{"content": "<"}]


def test_tool_history_renders_as_plain_turns():
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]
    rendered = render_tool_history(messages)
    assert rendered[1] == {"role": "assistant", "content": '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'}
    assert rendered[2]["role"] == "user" and "18C" in rendered[2]["content"]


def test_a_streamed_call_of_an_unknown_function_is_text():
    stream = ToolCallStream(NAMES)
    text = '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'
    deltas = [delta for piece in pieces(text, 3) for delta in stream.feed(piece)] + stream.finish()
    assert "".join(delta["content"] for delta in deltas) == text
    assert not stream.called


# Parsed from the grammar's structure: a JSON value between the tags.

TAG_IN_STRING = '<tool_call>{"name": "get_weather", "arguments": {"city": "a</tool_call>b"}}</tool_call>'


def test_a_closing_tag_inside_an_argument_string_stays_in_the_argument():
    (call,) = parse_tool_calls(TAG_IN_STRING, NAMES)
    assert json.loads(call["function"]["arguments"]) == {"city": "a</tool_call>b"}


def test_a_closing_tag_inside_an_argument_string_is_one_call_when_forced_too():
    (call,) = parse_tool_calls(TAG_IN_STRING, NAMES, forced=True)
    assert json.loads(call["function"]["arguments"]) == {"city": "a</tool_call>b"}


def test_an_unforced_answer_with_a_broken_block_is_text():
    assert parse_tool_calls(CALL + '\n<tool_call>{"name": "get_time", "argu', NAMES) is None


def test_text_after_unforced_calls_is_dropped_as_when_streamed():
    (call,) = parse_tool_calls(CALL + " and that is all", NAMES)
    assert call["function"]["name"] == "get_weather"


def test_a_forced_answer_cut_short_keeps_its_whole_calls_and_the_cut_one():
    calls = parse_tool_calls(CALL + '\n<tool_call>{"name": "get_time", "arguments": {"tz": "Europe/Par', NAMES, forced=True)
    assert [call["function"]["name"] for call in calls] == ["get_weather", "get_time"]
    assert calls[1]["function"]["arguments"] == '{"tz": "Europe/Par'


def test_a_forced_call_cut_before_its_closing_tag_has_whole_arguments():
    (call,) = parse_tool_calls('<tool_call>{"name": "get_time", "arguments": {"tz": "UTC"}}', NAMES, forced=True)
    assert json.loads(call["function"]["arguments"]) == {"tz": "UTC"}


def test_a_forced_answer_cut_inside_the_first_name_has_no_calls():
    assert parse_tool_calls('<tool_call>{"name": "get_w', NAMES, forced=True) is None


def test_whitespace_the_grammar_allows_around_the_json_is_accepted():
    text = '<tool_call>{ "name": "get_time", "arguments": {} }\n</tool_call>\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>\n'
    assert [call["function"]["name"] for call in parse_tool_calls(text, NAMES)] == ["get_time", "get_time"]


@pytest.mark.parametrize("size", [1, 7])
def test_a_streamed_closing_tag_inside_an_argument_string_stays_in_the_argument(size):
    stream = ToolCallStream(NAMES)
    deltas = [delta for piece in pieces(TAG_IN_STRING, size) for delta in stream.feed(piece)] + stream.finish()
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas)
    assert json.loads(arguments) == {"city": "a</tool_call>b"}
