"""A reasoning model's answer through the Responses API: a ``reasoning`` item before the
message, with its ``reasoning_text`` (and its summary when one is asked, as Codex asks),
the events the document defines for them (each checked by its schema), ``reasoning_tokens``
in usage, ``encrypted_content`` sealed with the server's key when included, and a reasoning
item sent back reaching the chat request. The answer is a recorded DeepSeek-R1 distill
output (tests/fixtures/reasoning/outputs.json) read by the local shaper, as the engine
streams it."""

from __future__ import annotations

import asyncio
import base64

from llm_backend.backends.llama.shapers import ChatShaper
from llm_backend.serving.responses import items, objects, reasoning
from llm_backend.serving.responses.events import ResponseStream
from tests.support.response_events import validate_event

TOKENS = ["Okay", ", ", "2", " + ", "3", " is ", "5", ".\n", "</think>", "\n\n", "It is ", "5", "."]
THOUGHT = "Okay, 2 + 3 is 5."
SEAL = reasoning.ReasoningSeal(b"a server key")


def chunks():
    shaper = ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": True, "tool_names": [], "tool_format": "convention", "reasoning_format": "deepseek-r1"})

    async def events():
        yield {"event": "prompt", "reasoning_start": "open"}
        for index, token in enumerate(TOKENS):
            yield {"event": "delta", "index": 0, "text": token, "tokens": 1, **({"finish_reason": "stop"} if index == len(TOKENS) - 1 else {})}
        yield {"event": "usage", "prompt_tokens": 7, "completion_tokens": len(TOKENS)}

    return shaper.chunks(events())


def skeleton(**request) -> dict:
    return objects.skeleton({"model": "m", "input": "2+3?", **request}, "resp_1", 0, "in_progress")


def streamed(response: dict, sealing=None) -> list[dict]:
    saved = []

    async def save(final):
        saved.append(final)

    async def collect():
        return [event async for _, event in ResponseStream(response, chunks(), save, sealing=sealing).events()]

    return asyncio.run(collect())


def test_streamed_reasoning_is_a_reasoning_item_whose_events_are_the_documents():
    request = {"reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"], "store": False}
    events = streamed(skeleton(**request), reasoning.sealing(request, SEAL))
    for event in events:
        validate_event(event)
    types = [event["type"] for event in events]
    assert types[2:7] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_text.delta", "response.reasoning_summary_text.delta",
    ]
    assert "".join(e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta") == THOUGHT
    assert "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta") == THOUGHT
    done = types.index("response.reasoning_text.done")
    assert types[done - 2 : done + 2] == [
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.reasoning_text.done", "response.output_item.done",
    ]
    final = events[-1]["response"]
    thought, message = final["output"]
    assert thought["type"] == "reasoning" and thought["status"] == "completed"
    assert thought["summary"] == [{"type": "summary_text", "text": THOUGHT}]
    assert thought["content"] == [{"type": "reasoning_text", "text": THOUGHT}]
    assert SEAL.open(thought["encrypted_content"]) == THOUGHT and THOUGHT not in base64.b64decode(thought["encrypted_content"]).decode("latin-1")
    assert message["content"][0]["text"] == "It is 5."
    # The tokens before </think>, as vLLM counts them.
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 8}


def test_without_a_summary_asked_the_item_has_its_text_and_no_summary_events():
    events = streamed(skeleton())
    types = [event["type"] for event in events]
    assert not any(kind.startswith("response.reasoning_summary") for kind in types)
    thought = events[-1]["response"]["output"][0]
    assert thought["summary"] == [] and thought["content"][0]["text"] == THOUGHT and "encrypted_content" not in thought


def test_a_whole_answer_has_the_same_reasoning_item():
    async def whole():
        events = [{"event": "prompt", "reasoning_start": "open"}]
        events += [{"event": "delta", "index": 0, "text": token, "tokens": 1} for token in TOKENS]
        events[-1]["finish_reason"] = "stop"
        events.append({"event": "usage", "prompt_tokens": 7, "completion_tokens": len(TOKENS)})
        shaper = ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": False, "tool_names": [], "tool_format": "convention", "reasoning_format": "deepseek-r1"})
        return shaper.completion(events)

    response = objects.from_chat(skeleton(reasoning={"summary": "auto"}), asyncio.run(whole()), SEAL.seal)
    thought, message = response["output"]
    assert thought["summary"][0]["text"] == THOUGHT and SEAL.open(thought["encrypted_content"]) == THOUGHT
    assert message["content"][0]["text"] == "It is 5." and response["usage"]["output_tokens_details"]["reasoning_tokens"] == 8


def test_a_reasoning_item_sent_back_sealed_is_the_reasoning_of_the_call_it_led_to():
    sent = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": SEAL.seal("I should call get_weather.")},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ]
    messages = items.chat_messages(reasoning.readable(sent, SEAL))
    assert messages[1]["role"] == "assistant" and messages[1]["reasoning_content"] == "I should call get_weather."
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather" and messages[2]["role"] == "tool"


def test_reasoning_sealed_by_another_key_or_altered_is_not_read():
    other = reasoning.ReasoningSeal(b"another key").seal("secret thoughts")
    assert SEAL.open(other) is None and SEAL.open("not base64!") is None
    item = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "A summary."}], "encrypted_content": other}
    assert reasoning.text_of(item, SEAL) == "A summary."  # its own text, not the sealed one
    assert items.chat_messages(reasoning.readable([{"type": "reasoning", "summary": [], "encrypted_content": other}], SEAL)) == []


def test_a_reasoning_item_before_an_assistant_message_joins_it():
    sent = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "A greeting."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]},
    ]
    assert items.chat_messages(sent)[1] == {"role": "assistant", "content": "Hello!", "reasoning_content": "A greeting."}


def test_reasoning_sealed_for_another_project_is_not_read():
    """Issue #56: sealed reasoning is bound to the project that asked; another project's,
    sent back, opens to nothing (its plain text, if it has some, is what it says)."""
    from llm_backend.backends.base import tenant

    token = tenant.set("project-a")
    try:
        sealed = SEAL.seal("project a's thoughts")
        assert SEAL.open(sealed) == "project a's thoughts"
    finally:
        tenant.reset(token)
    token = tenant.set("project-b")
    try:
        assert SEAL.open(sealed) is None
    finally:
        tenant.reset(token)
