"""A stream of chunks becomes one stored ``chat.completion`` (pure function, no server)."""

from llm_backend.serving.chat_completions import assemble


def chunk(delta: dict, finish_reason=None, **extra) -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}], **extra,
    }


def test_tool_call_deltas_are_merged_into_whole_calls():
    chunks = [
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                    "function": {"name": "get_", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, "tool_calls"),
    ]
    message = assemble(chunks, finished=True)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]


def test_stream_cut_short_reads_length_and_keeps_what_was_sent():
    completion = assemble([chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"})], finished=False)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "Hello"
    assert completion["choices"][0]["finish_reason"] == "length"
    assert "usage" not in completion


def test_usage_of_the_final_chunk_is_kept():
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    chunks = [chunk({"role": "assistant", "content": "Hi"}, "stop"), {**chunk({}), "choices": [], "usage": usage}]
    completion = assemble(chunks, finished=True)
    assert completion["usage"] == usage and completion["choices"][0]["finish_reason"] == "stop"


def test_a_reasoning_models_reasoning_is_kept_apart_from_its_content():
    chunks = [
        chunk({"role": "assistant", "content": None, "reasoning_content": "2+3"}),
        chunk({"reasoning_content": " is 5.", "reasoning": " is 5."}),
        chunk({"content": "5"}, "stop"),
    ]
    message = assemble(chunks, finished=True)["choices"][0]["message"]
    assert message["content"] == "5" and message["reasoning_content"] == message["reasoning"] == "2+3 is 5."
