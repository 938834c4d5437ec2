"""Engine events to OpenAI objects: synthetic events in, chat completions, chunks,
legacy completions and embeddings out."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator

from llm_backend.backends.llama.shapers import ChatShaper, CompletionShaper, embedding_response

CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def params(**overrides) -> dict:
    return {"n": 1, "logprobs": False, "include_usage": False, "tool_names": [], "structure": None, **overrides}


def delta(text: str, index: int = 0, finish_reason: str | None = None, logprobs: list | None = None) -> dict:
    event = {"event": "delta", "index": index, "text": text}
    if finish_reason:
        event["finish_reason"] = finish_reason
    if logprobs is not None:
        event["logprobs"] = logprobs
    return event


def usage(prompt: int = 5, completion: int = 2, cached: int = 0) -> dict:
    return {"event": "usage", "prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached}


def entry(token: str, logprob: float) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": []}


async def events_of(*events: dict) -> AsyncIterator[dict]:
    for event in events:
        yield event


async def chunks(shaper, *events: dict) -> list[dict]:
    return [chunk async for chunk in shaper.chunks(events_of(*events))]


# Chat completions, whole.


def test_a_chat_answer_is_a_chat_completion_under_the_requested_model_id():
    shaper = ChatShaper("smollm2-alias", "fp_1", params())
    answer = shaper.completion([{"event": "prompt"}, delta("Hel"), delta("lo", finish_reason="stop"), usage()])
    assert answer["object"] == "chat.completion" and answer["id"].startswith("chatcmpl-")
    assert (answer["model"], answer["system_fingerprint"]) == ("smollm2-alias", "fp_1")
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]


def test_usage_totals_the_tokens_and_reports_cached_prompt_tokens():
    answer = ChatShaper("m", "fp", params()).completion([delta("x", finish_reason="length"), usage(7, 3, cached=4)])
    assert answer["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_interleaved_choices_are_gathered_by_index():
    events = [delta("a", 1), delta("b", 0), delta("c", 1, "stop"), delta("d", 0, "length"), usage()]
    answer = ChatShaper("m", "fp", params(n=2)).completion(events)
    assert [(c["message"]["content"], c["finish_reason"]) for c in answer["choices"]] == [("bd", "length"), ("ac", "stop")]


def test_chat_logprobs_are_listed_per_token_when_asked():
    events = [delta("a", logprobs=[entry("a", -0.1)]), delta("b", finish_reason="stop", logprobs=[entry("b", -0.2)])]
    answer = ChatShaper("m", "fp", params(logprobs=True)).completion(events)
    assert answer["choices"][0]["logprobs"] == {"content": [entry("a", -0.1), entry("b", -0.2)], "refusal": None}


def test_a_tool_call_answer_becomes_tool_calls_with_finish_reason_tool_calls():
    answer = ChatShaper("m", "fp", params(tool_names=["get_weather"])).completion([delta(CALL, finish_reason="stop")])
    choice = answer["choices"][0]
    assert choice["message"]["content"] is None and choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_a_plain_answer_with_tools_offered_stays_content():
    answer = ChatShaper("m", "fp", params(tool_names=["get_weather"])).completion([delta("Sunny.", finish_reason="stop")])
    assert answer["choices"][0]["message"]["content"] == "Sunny." and "tool_calls" not in answer["choices"][0]["message"]


def test_forced_tool_calls_cut_by_max_tokens_keep_the_whole_calls_and_finish_reason_length():
    forced = params(tool_names=["get_weather"], structure={"kind": "tool_calls"})
    text = CALL + '\n<tool_call>{"name": "get_weather", "arguments": {"city": "Ly'
    choice = ChatShaper("m", "fp", forced).completion([delta(text, finish_reason="length")])["choices"][0]
    assert choice["finish_reason"] == "length"
    assert [call["function"]["arguments"] for call in choice["message"]["tool_calls"]] == [
        '{"city": "Paris"}',
        '{"city": "Ly',
    ]


def test_a_gpt_oss_model_under_the_convention_takes_its_answer_as_it_is():
    # Its reasoning family leaves the channels to its own tool format, which the convention
    # replaces: nothing reads the answer (it was read by no parser at all, a 500).
    shaper = ChatShaper("m", "fp", params(tool_format="convention", reasoning_format="gpt-oss"))
    answer = shaper.completion([{"event": "prompt"}, delta("Hello", finish_reason="stop"), usage()])
    assert answer["choices"][0]["message"]["content"] == "Hello"


async def test_a_gpt_oss_model_under_the_convention_streams_its_answer_as_it_is():
    shaper = ChatShaper("m", "fp", params(tool_format="convention", reasoning_format="gpt-oss"))
    got = await chunks(shaper, {"event": "prompt"}, delta("Hel"), delta("lo", finish_reason="stop"))
    assert [chunk["choices"][0]["delta"] for chunk in got] == [{"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": "lo"}, {}]


# Chat completions, streamed.


async def test_a_chat_stream_starts_with_the_role_and_ends_with_the_finish_reason():
    got = await chunks(ChatShaper("m", "fp", params()), {"event": "prompt"}, delta("Hi"), delta("!", finish_reason="stop"), usage())
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in got)
    assert len({chunk["id"] for chunk in got}) == 1
    assert [chunk["choices"][0]["delta"] for chunk in got] == [{"role": "assistant", "content": ""}, {"content": "Hi"}, {"content": "!"}, {}]
    assert [chunk["choices"][0]["finish_reason"] for chunk in got] == [None, None, None, "stop"]


async def test_a_chat_stream_has_no_usage_chunk_unless_asked():
    got = await chunks(ChatShaper("m", "fp", params()), delta("x", finish_reason="stop"), usage())
    assert all(chunk["choices"] for chunk in got)


async def test_include_usage_adds_a_last_chunk_with_usage_and_no_choices():
    got = await chunks(ChatShaper("m", "fp", params(include_usage=True)), delta("x", finish_reason="stop"), usage(3, 1))
    assert got[-1]["choices"] == [] and got[-1]["usage"]["total_tokens"] == 4


async def test_an_empty_delta_without_logprobs_sends_no_chunk():
    got = await chunks(ChatShaper("m", "fp", params()), delta(""), delta("x", finish_reason="stop"))
    assert [chunk["choices"][0]["delta"] for chunk in got] == [{"content": "x"}, {}]


async def test_a_streamed_tool_call_becomes_tool_call_deltas_and_finish_reason_tool_calls():
    events = [delta(CALL[:20]), delta(CALL[20:45]), delta(CALL[45:], finish_reason="stop")]
    got = await chunks(ChatShaper("m", "fp", params(tool_names=["get_weather"])), *events)
    parts = [part for chunk in got for part in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert parts[0]["function"]["name"] == "get_weather" and parts[0]["id"].startswith("call_")
    assert json.loads("".join(part["function"]["arguments"] for part in parts)) == {"city": "Paris"}
    assert got[-1]["choices"][0]["finish_reason"] == "tool_calls"


# Legacy completions.


def test_a_completion_answer_is_a_text_completion_with_the_echoed_prompt_first():
    events = [{"event": "echo", "text": "Say: ", "logprobs": None}, delta("hi", finish_reason="length"), usage()]
    answer = CompletionShaper("m", "fp", params()).completion(events)
    assert answer["object"] == "text_completion" and answer["id"].startswith("cmpl-")
    assert answer["choices"] == [{"index": 0, "text": "Say: hi", "logprobs": None, "finish_reason": "length"}]


def test_completion_logprobs_use_the_legacy_format_with_text_offsets():
    tops = [{"token": "a", "logprob": -0.1}, {"token": "b", "logprob": -2.0}]
    events = [delta("ab", finish_reason="stop", logprobs=[{**entry("a", -0.1), "top_logprobs": tops}, entry("b", -0.5)])]
    logprobs = CompletionShaper("m", "fp", params(logprobs=True)).completion(events)["choices"][0]["logprobs"]
    assert logprobs == {
        "tokens": ["a", "b"],
        "token_logprobs": [-0.1, -0.5],
        "top_logprobs": [{"a": -0.1, "b": -2.0}, {}],
        "text_offset": [0, 1],
    }


async def test_streamed_completion_offsets_continue_after_the_echoed_prompt():
    events = [{"event": "echo", "text": "abc", "logprobs": []}, delta("d", finish_reason="stop", logprobs=[entry("d", -1.0)])]
    got = await chunks(CompletionShaper("m", "fp", params(logprobs=True)), *events)
    assert [chunk["choices"][0]["text"] for chunk in got] == ["abc", "d"]
    assert got[1]["choices"][0]["logprobs"]["text_offset"] == [3]
    assert got[1]["choices"][0]["finish_reason"] == "stop"


# Embeddings.


def test_embeddings_are_listed_in_input_order_with_usage():
    answer = embedding_response("m", {"vectors": [[0.5, 0.5], [1.0, 0.0]], "n_tokens": 6}, "float")
    assert [(item["index"], item["embedding"]) for item in answer["data"]] == [(0, [0.5, 0.5]), (1, [1.0, 0.0])]
    assert answer["usage"] == {"prompt_tokens": 6, "total_tokens": 6} and answer["model"] == "m"


def test_base64_embeddings_are_little_endian_float32():
    answer = embedding_response("m", {"vectors": [[0.25, -1.0]], "n_tokens": 1}, "base64")
    assert struct.unpack("<2f", base64.b64decode(answer["data"][0]["embedding"])) == (0.25, -1.0)


def test_an_xml_format_types_a_value_by_its_parameter_schema():
    """Qwen3-Coder writes values as raw text: a string parameter whose text looks like JSON
    stays a string (the offered tools reach the shaper's parser), as llama.cpp types it."""
    write_file = {"type": "function", "function": {"name": "write_file", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}}}
    text = ("<tool_call>\n<function=write_file>\n<parameter=path>\nx.json\n</parameter>\n"
            '<parameter=content>\n{"name": "demo", "private": true}\n</parameter>\n</function>\n</tool_call>')
    shaper = ChatShaper("m", "fp", params(tool_names=["write_file"], tools=[write_file], tool_format="qwen3-coder"))
    (call,) = shaper.completion([delta(text, finish_reason="stop")])["choices"][0]["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"path": "x.json", "content": '{"name": "demo", "private": true}'}
