"""Each reasoning family with its real chat template (tests/fixtures/chat_templates) and
recorded outputs (tests/fixtures/reasoning/outputs.json, each case naming the reference
test it comes from): the family is recognised from its template, the template's own switch
is set from the effort, reasoning passed back reaches the template as it reads it, and an
answer splits into ``reasoning_content`` and content as llama.cpp's server with
``--reasoning-format deepseek`` and vLLM's parsers split it, whole and streamed in pieces
cut at every character. No reasoning GGUF can be installed here: the outputs are the
references' recorded ones, not sampled from a model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from llm_backend.backends.llama import reasoning
from llm_backend.backends.llama.engine.prompts import ChatTemplate
from llm_backend.backends.llama.engine.thinking import Thinking
from llm_backend.backends.llama.reasoning.stream import answer_parser
from llm_backend.backends.llama.shapers import ChatShaper
from llm_backend.backends.llama.tool_formats import named as tool_format
from llm_backend.backends.llama.tool_formats.deltas import read_message
from llm_backend.errors import OpenAIError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TEMPLATES = {
    "deepseek-r1": "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    "qwen3": "Qwen-Qwen3-0.6B.jinja",
    "gpt-oss": "openai-gpt-oss-120b.jinja",
}
TOOL_FORMATS = {"deepseek-r1": "convention", "qwen3": "hermes", "gpt-oss": "gpt-oss"}
CASES = json.loads((FIXTURES / "reasoning" / "outputs.json").read_text())["cases"]
IDS = [f"{case['family']}: {case['name']}" for case in CASES]
WEATHER_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def template(family: str) -> ChatTemplate:
    return ChatTemplate.of_text((FIXTURES / "chat_templates" / TEMPLATES[family]).read_text(), "<s>", "</s>")


def expected(case: dict) -> tuple:
    # OpenAI's message has "" for a text answer without text (the references: null).
    content = case["content"] if case["content"] is not None or case.get("calls") else ""
    calls = [(call["name"], json.loads(call["arguments"])) for call in case.get("calls", [])]
    return content, calls, case["reasoning"] or ""


def read(case: dict, pieces: list[str]) -> tuple:
    """The case's output fed in ``pieces`` through the shaper, as the engine streams it."""
    tools = case.get("tools") or []
    family_tools = tool_format(TOOL_FORMATS[case["family"]])
    shaper = ChatShaper("m", "fp", {
        "n": 1, "logprobs": False, "include_usage": True, "tool_names": tools,
        "tool_format": family_tools.name, "reasoning_format": case["family"],
    })

    async def events():
        yield {"event": "prompt", "reasoning_start": case["start"]}
        for index, piece in enumerate(pieces):
            yield {"event": "delta", "index": 0, "text": piece, "tokens": 1, **({"finish_reason": "stop"} if index == len(pieces) - 1 else {})}
        yield {"event": "usage", "prompt_tokens": 3, "completion_tokens": len(pieces)}

    async def collect():
        return [chunk async for chunk in shaper.chunks(events())]

    content, reasoning_text, calls = [], [], {}
    for chunk in asyncio.run(collect())[1:]:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if "reasoning_content" in delta:
                assert delta["reasoning"] == delta["reasoning_content"]  # vLLM's name beside DeepSeek's
                reasoning_text.append(delta["reasoning_content"])
            content.append(delta.get("content") or "")
            for entry in delta.get("tool_calls", []):
                calls.setdefault(entry["index"], ["", ""])
                calls[entry["index"]][0] += entry["function"].get("name") or ""
                calls[entry["index"]][1] += entry["function"].get("arguments") or ""
    text = "".join(content)
    return (text if text or not calls else None), [(name, json.loads(args)) for name, args in calls.values()], "".join(reasoning_text)


@pytest.mark.parametrize("family", TEMPLATES)
def test_the_family_is_recognised_from_its_template(family):
    assert template(family).reasoning.name == family


@pytest.mark.parametrize("name", ["Qwen-Qwen2.5-7B-Instruct.jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja", "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "mistralai-Mistral-Nemo-Instruct-2407.jinja"])
def test_a_template_that_does_not_reason_has_no_family(name):
    assert ChatTemplate.of_text((FIXTURES / "chat_templates" / name).read_text()).reasoning is None


def test_deepseek_r1_distills_open_the_block_in_the_prompt():
    prompt, _, _ = template("deepseek-r1").render([{"role": "user", "content": "Hi"}])
    assert prompt.endswith("<｜Assistant｜><think>\n")
    assert reasoning.named("deepseek-r1").start(prompt) == "open"


def test_deepseek_v3_1s_thinking_flag_is_set_from_the_effort():
    v3 = ChatTemplate.of_text((FIXTURES / "chat_templates" / "deepseek-ai-DeepSeek-V3.1.jinja").read_text(), "<s>", "</s>")
    family = v3.reasoning
    assert family.name == "deepseek-r1"
    on, _, _ = v3.render([{"role": "user", "content": "Hi"}], template_kwargs=family.template_kwargs("high"))
    off, _, _ = v3.render([{"role": "user", "content": "Hi"}], template_kwargs=family.template_kwargs("none"))
    default, _, _ = v3.render([{"role": "user", "content": "Hi"}], template_kwargs=family.template_kwargs(None))
    assert on.endswith("<｜Assistant｜><think>") and family.start(on) == "open"
    assert off.endswith("<｜Assistant｜></think>") and family.start(off) == "start" and default == off


def test_qwen3_effort_none_switches_thinking_off_with_the_templates_own_flag():
    family = reasoning.named("qwen3")
    off, _, _ = template("qwen3").render([{"role": "user", "content": "Hi"}], template_kwargs=family.template_kwargs("none"))
    on, _, _ = template("qwen3").render([{"role": "user", "content": "Hi"}], template_kwargs=family.template_kwargs("high"))
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and on.endswith("<|im_start|>assistant\n")
    # Closed in the prompt: the answer is read from the start, and is content.
    assert family.start(off) == "start"


@pytest.mark.parametrize("effort, level", [("low", "low"), ("medium", "medium"), ("high", "high"), ("minimal", "low"), ("xhigh", "high")])
def test_gpt_oss_effort_is_the_reasoning_line_of_its_system_message(effort, level):
    prompt, _, _ = template("gpt-oss").render([{"role": "user", "content": "Hi"}], template_kwargs=reasoning.named("gpt-oss").template_kwargs(effort))
    assert f"Reasoning: {level}\n" in prompt


def history_with_reasoning() -> list[dict]:
    return [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "", "reasoning_content": "I should call get_weather.", "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]


def test_reasoning_passed_back_reaches_qwen3s_template_as_its_think_block():
    prompt, _, _ = template("qwen3").render(history_with_reasoning(), [], None)
    assert "<|im_start|>assistant\n<think>\nI should call get_weather.\n</think>\n\n" in prompt


def test_reasoning_passed_back_reaches_gpt_oss_as_its_analysis_message():
    prompt, _, _ = template("gpt-oss").render(history_with_reasoning(), [], None)
    assert "<|start|>assistant<|channel|>analysis<|message|>I should call get_weather.<|end|>" in prompt


def test_reasoning_passed_back_is_dropped_for_deepseek_as_its_template_drops_it():
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!", "reasoning_content": "A greeting."}, {"role": "user", "content": "Bye"}]
    prompt, _, _ = template("deepseek-r1").render(history)
    assert "A greeting." not in prompt and "<｜Assistant｜>Hello!<｜end▁of▁sentence｜>" in prompt


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_recorded_output_splits_as_the_reference_server_splits_it(case):
    tools = set(case.get("tools") or [])
    inner = tool_format(TOOL_FORMATS[case["family"]]).parser(tools) if tools or case["family"] == "gpt-oss" else None
    content, calls, reasoning_text = read_message(answer_parser(case["family"], case["start"], inner) or inner, case["output"])
    assert (content, [(call["function"]["name"], json.loads(call["function"]["arguments"])) for call in calls], reasoning_text) == expected(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_streamed_cut_anywhere_it_says_what_the_whole_output_says(case):
    output = case["output"]
    for cut in range(len(output) + 1):
        assert read(case, [output[:cut], output[cut:]]) == expected(case), f"cut at {cut}"
    assert read(case, list(output)) == expected(case)  # a character at a time


def test_the_message_has_reasoning_content_and_reasoning_and_usage_counts_reasoning_tokens():
    # A DeepSeek-R1 distill's answer as the engine sends it: one token per delta.
    tokens = ["Okay", ",", " 2", "+", "3", "=", "5", ".\n", "</think>", "\n\n", "5", "."]
    shaper = ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": True, "tool_names": [], "tool_format": "convention", "reasoning_format": "deepseek-r1"})
    events = [{"event": "prompt", "reasoning_start": "open"}]
    events += [{"event": "delta", "index": 0, "text": token, "tokens": 1} for token in tokens]
    events[-1]["finish_reason"] = "stop"
    events.append({"event": "usage", "prompt_tokens": 9, "completion_tokens": len(tokens)})
    completion = shaper.completion(events)
    message = completion["choices"][0]["message"]
    assert message["content"] == "5." and message["reasoning_content"] == message["reasoning"] == "Okay, 2+3=5."
    # Its reasoning is the tokens inside the block, </think> not included, as vLLM counts them
    # (BaseThinkingReasoningParser.count_reasoning_tokens: from the block's start, here the
    # prompt's, to the closing tag).
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 8}


def test_reasoning_tokens_of_a_block_the_answer_opens_leave_both_tags_out():
    # Qwen3 (its template leaves the opening to the model): vLLM counts 3, between the tags.
    tokens = ["<think>", "\n", "Hi", "\n", "</think>", "\n\n", "Hello", "!"]
    shaper = ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": True, "tool_names": [], "tool_format": "hermes", "reasoning_format": "qwen3"})
    events = [{"event": "prompt", "reasoning_start": "start"}]
    events += [{"event": "delta", "index": 0, "text": token, "tokens": 1} for token in tokens]
    events[-1]["finish_reason"] = "stop"
    events.append({"event": "usage", "prompt_tokens": 9, "completion_tokens": len(tokens)})
    completion = shaper.completion(events)
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}
    assert completion["choices"][0]["message"]["content"] == "Hello!"


def test_a_model_without_reasoning_has_no_reasoning_fields():
    shaper = ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": True, "tool_names": [], "tool_format": "convention"})
    events = [{"event": "prompt"}, {"event": "delta", "index": 0, "text": "<think>x</think>Hi", "tokens": 5, "finish_reason": "stop"}, {"event": "usage", "prompt_tokens": 1, "completion_tokens": 5}]
    completion = shaper.completion(events)
    assert completion["choices"][0]["message"]["content"] == "<think>x</think>Hi"
    assert "reasoning_content" not in completion["choices"][0]["message"] and "completion_tokens_details" not in completion["usage"]


def test_effort_maps_to_the_switch_and_a_budget_and_models_without_reasoning_refuse_it():
    assert reasoning.request_params(None, None) == {} and reasoning.request_params(None, "none") == {}
    with pytest.raises(OpenAIError) as refused:
        reasoning.request_params(None, "high")
    assert refused.value.status == 400 and refused.value.param == "reasoning_effort"
    assert reasoning.request_params("qwen3", "none") == {"reasoning_format": "qwen3", "chat_template_kwargs": {"enable_thinking": False}, "thinking_budget": None}
    assert reasoning.request_params("qwen3", "high")["thinking_budget"] == 16384
    # DeepSeek-R1's template cannot switch thinking off: the budget closes the block at once.
    assert reasoning.request_params("deepseek-r1", "none")["thinking_budget"] == 0
    assert reasoning.request_params("gpt-oss", "low") == {"reasoning_format": "gpt-oss", "chat_template_kwargs": {"reasoning_effort": "low"}, "thinking_budget": 1024}
    assert reasoning.request_params("qwen3", None)["chat_template_kwargs"] == {}  # the template's default


def test_past_its_budget_the_engine_writes_the_closing_text_instead_of_sampling():
    close = [101, 102, 103]  # "\n</think>\n\n"
    thinking = Thinking("<think>", "</think>", close, opened=True, budget=2)
    taken = []
    for sampled, text in [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")]:
        token = thinking.token(sampled)
        taken.append(token)
        thinking.saw({101: "\n", 102: "</think>", 103: "\n\n"}.get(token, text))
    assert taken == [1, 2, 101, 102, 103, 6]


def test_a_block_closed_within_its_budget_is_left_alone():
    thinking = Thinking("<think>", "</think>", [9], opened=False, budget=3)
    taken = []
    for sampled, text in [(1, "<think>"), (2, "a"), (3, "</think>"), (4, "x"), (5, "y"), (6, "z")]:
        taken.append(thinking.token(sampled))
        thinking.saw(text)
    assert taken == [1, 2, 3, 4, 5, 6]


def test_budget_zero_closes_a_block_the_prompt_opened_at_once():
    thinking = Thinking("<think>", "</think>", [9, 8], opened=True, budget=0)
    assert [thinking.token(1), thinking.token(2), thinking.token(3)] == [9, 8, 3]


def test_gpt_oss_past_its_budget_ends_the_analysis_message_and_opens_the_final_channel():
    family = reasoning.named("gpt-oss")
    close = [201, 202]  # family.budget_close's tokens
    thinking = Thinking(family.budget_opening, family.budget_closing, close, family.start("...") == "open", budget=2)
    taken = []
    for sampled, text in [(1, "<|channel|>"), (2, "analysis<|message|>"), (3, "Let"), (4, " me"), (5, " see"), (6, "x")]:
        token = thinking.token(sampled)
        taken.append(token)
        thinking.saw({201: "<|end|><|start|>assistant", 202: "<|channel|>final<|message|>"}.get(token, text))
    assert taken == [1, 2, 3, 4, 201, 202] and family.budget_close == "<|end|><|start|>assistant<|channel|>final<|message|>"
