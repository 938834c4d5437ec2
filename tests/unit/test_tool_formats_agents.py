"""The tool formats of the models coding agents run on (issue #59): Qwen3-Coder, GLM-4.5/4.6,
DeepSeek V3.1, and Devstral (Mistral's ``[ARGS]`` format, tool_formats/mistral.py). Each is
recognised from its family's published chat template (tests/fixtures/templates/, and
tests/fixtures/chat_templates/ for DeepSeek V3.1 and Devstral), renders the tools and the
history's calls as the template does, and reads the family's answers as llama.cpp's
reference parsers read them: the recorded outputs (tests/fixtures/templates/tool_outputs.json,
llama.cpp's own test cases and a few written in the templates' layout, each naming its source)
give the same calls, content and reasoning through the local shaper, whole and streamed in
pieces cut at every character, and then through the Responses and Messages lanes built on
its chunks. A streamed answer that assembles to the expected content has leaked no markup
into it. No such model can be installed here: the outputs are recorded, not sampled."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from llm_backend.backends.llama.engine.prompts import ChatTemplate
from llm_backend.backends.llama.shapers import ChatShaper
from llm_backend.backends.llama.tool_formats import named
from llm_backend.backends.llama.tool_formats.deltas import ToolCallStream, read_answer
from llm_backend.families.messages.serving import answer as messages_answer
from llm_backend.serving.responses import objects
from llm_backend.serving.responses.events import ResponseStream
from tests.unit.test_tool_formats import HISTORY

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDED = json.loads((FIXTURES / "templates" / "tool_outputs.json").read_text())
TOOLS, CASES = RECORDED["tools"], RECORDED["cases"]
TEMPLATES = {
    "qwen3-coder": FIXTURES / "templates" / "Qwen3-Coder.jinja",
    "glm": FIXTURES / "templates" / "GLM-4.6.jinja",
    "deepseek-v3.1": FIXTURES / "chat_templates" / "deepseek-ai-DeepSeek-V3.1.jinja",
    "mistral-args": FIXTURES / "chat_templates" / "unsloth-mistral-Devstral-Small-2507.jinja",
}
# The reasoning family the engine gives each (reasoning/): DeepSeek's; GLM's block is its
# tool format's own (tool_formats/glm.py).
REASONING = {"deepseek-v3.1": "deepseek-r1"}
# How each template prints the history's call: the syntax the family's answers are read in.
HISTORY_CALLS = {
    "qwen3-coder": "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
    "glm": "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>",
    "deepseek-v3.1": '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
}


def template(family: str) -> ChatTemplate:
    return ChatTemplate.of_text(TEMPLATES[family].read_text(), "<s>", "</s>")


def tools_of(case: dict) -> list[dict]:
    return [TOOLS[name] for name in case["tools"]]


def expected(case: dict) -> tuple[str | None, list[tuple[str, object]], str]:
    """(content, calls as (name, arguments as a JSON value), reasoning): llama.cpp's."""
    return case["content"], [(name, json.loads(arguments)) for name, arguments in case["calls"]], case["reasoning"]


def shaper(case: dict) -> ChatShaper:
    return ChatShaper("m", "fp", {
        "n": 1, "logprobs": False, "include_usage": False, "tool_names": case["tools"], "tool_format": case["family"],
        "reasoning_format": REASONING.get(case["family"]),
    })


def engine_events(case: dict, pieces: list[str]) -> list[dict]:
    """The engine's events of an answer streamed in ``pieces``."""
    events: list[dict] = [{"event": "prompt", "reasoning_start": case.get("start")}]
    for index, piece in enumerate(pieces):
        events.append({"event": "delta", "index": 0, "text": piece, **({"finish_reason": "stop"} if index == len(pieces) - 1 else {})})
    return events


async def chunks(case: dict, pieces: list[str]):
    async def events():
        for event in engine_events(case, pieces):
            yield event

    async for chunk in shaper(case).chunks(events()):
        yield chunk


def read_chunks(chunks_: list[dict]) -> tuple[str | None, list[tuple[str, object]], str, str | None]:
    """What a client makes of chat chunks: content, calls, reasoning, finish reason."""
    content, reasoning, calls, reason = [], [], {}, None
    for chunk in chunks_:
        (choice,) = chunk["choices"]
        reason = choice["finish_reason"] or reason
        delta = choice["delta"]
        content.append(delta.get("content") or "")
        reasoning.append(delta.get("reasoning_content") or "")
        for entry in delta.get("tool_calls", []):
            if "id" in entry:
                calls[entry["index"]] = [entry["function"]["name"], ""]
            else:
                calls[entry["index"]][1] += entry["function"]["arguments"]
    listed = [(name, json.loads(arguments)) for name, arguments in (calls[index] for index in sorted(calls))]
    return ("".join(content) or None), listed, "".join(reasoning), reason


def cuts(text: str) -> list[list[str]]:
    """The answer in two pieces cut at every character, and a character at a time."""
    return [[text[:cut], text[cut:]] for cut in range(len(text) + 1)] + [list(text)]


# --- the families and their templates ----------------------------------------------------------


@pytest.mark.parametrize("family", TEMPLATES)
def test_the_family_is_recognised_from_its_template(family):
    assert template(family).tool_format.name == family


@pytest.mark.parametrize("family", HISTORY_CALLS)
def test_its_template_renders_the_tools_and_the_historys_call_in_the_familys_syntax(family):
    prompt, _, _ = template(family).render(HISTORY, [TOOLS["get_weather"], TOOLS["get_time"]], "auto")
    assert HISTORY_CALLS[family] in prompt
    assert "18C and sunny" in prompt and "Get the current weather in a city" in prompt and "get_time" in prompt


def test_deepseek_v3_1_gets_its_tools_after_the_system_prompt_as_its_model_card_writes_them():
    # Its template prints no tools: without this section the model would never see them.
    prompt, _, _ = template("deepseek-v3.1").render(HISTORY[:2], [TOOLS["get_time"]], "auto")
    assert prompt.startswith("<s>Answer briefly.\n\n## Tools\nYou have access to the following tools:\n\n### get_time\n"
                             "Description: Get the current time in a city\n\nParameters: {\"type\": \"object\", ")
    assert ("IMPORTANT: ALWAYS adhere to this exact format for tool use:\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>"
            "tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>{additional_tool_calls}<｜tool▁calls▁end｜>") in prompt
    assert prompt.endswith("chain them directly without separators or spaces<｜User｜>What is the weather in Paris?<｜Assistant｜></think>")


def test_a_deepseek_r1_template_is_not_taken_for_v3_1():
    # R1's calls are another syntax (function<｜tool▁sep｜>NAME and a fenced JSON block).
    r1 = ChatTemplate.of_text((FIXTURES / "chat_templates" / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja").read_text())
    assert r1.tool_format.name != "deepseek-v3.1"


# --- recorded outputs, as llama.cpp reads them --------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[f"{case['family']}: {case['name']}" for case in CASES])
def test_a_recorded_output_gives_llama_cpps_calls_whole_and_streamed_cut_anywhere(case):
    whole = shaper(case).completion(engine_events(case, [case["output"]]))
    (choice,) = whole["choices"]
    message = choice["message"]
    calls = [(call["function"]["name"], json.loads(call["function"]["arguments"])) for call in message.get("tool_calls") or []]
    content, want_calls, reasoning = expected(case)
    assert (message["content"] or None, calls, message.get("reasoning_content") or "") == (content, want_calls, reasoning)
    assert choice["finish_reason"] == ("tool_calls" if want_calls else "stop")

    async def every_cut():
        return [[chunk async for chunk in chunks(case, pieces)] for pieces in cuts(case["output"])]

    for pieces, streamed in zip(cuts(case["output"]), asyncio.run(every_cut())):
        assert read_chunks(streamed) == (content, want_calls, reasoning, choice["finish_reason"]), pieces


@pytest.mark.parametrize("case", CASES, ids=[f"{case['family']}: {case['name']}" for case in CASES])
def test_a_recorded_output_is_the_same_function_calls_in_responses(case):
    content, want_calls, _ = expected(case)
    response = objects.skeleton({"model": "m", "input": "x"}, "resp_1", 0, "in_progress")
    saved: list[dict] = []

    async def save(final):
        saved.append(final)

    async def streamed():
        return [event async for _, event in ResponseStream(response, chunks(case, list(case["output"])), save).events()]

    whole = objects.from_chat(response, shaper(case).completion(engine_events(case, [case["output"]])))
    final = asyncio.run(streamed())[-1]["response"]
    for output in (whole["output"], final["output"]):
        calls = [(item["name"], json.loads(item["arguments"])) for item in output if item["type"] == "function_call"]
        text = "".join(part["text"] for item in output if item["type"] == "message" for part in item["content"])
        assert (text or None, calls) == (content, want_calls)


@pytest.mark.parametrize("case", CASES, ids=[f"{case['family']}: {case['name']}" for case in CASES])
def test_a_recorded_output_is_the_same_tool_use_blocks_in_messages(case):
    content, want_calls, reasoning = expected(case)

    async def streamed():
        return [event async for _, event in messages_answer.events(chunks(case, list(case["output"])), "m", "signed".format)]

    blocks: dict[int, dict] = {}
    for event in asyncio.run(streamed()):
        if event["type"] == "content_block_start":
            blocks[event["index"]] = {**event["content_block"], "partial": ""}
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            block["partial"] += delta.get("partial_json") or delta.get("text") or delta.get("thinking") or ""
    stream_uses = [(block["name"], json.loads(block["partial"])) for block in blocks.values() if block["type"] == "tool_use"]
    stream_text = "".join(block["partial"] for block in blocks.values() if block["type"] == "text")
    stream_thought = "".join(block["partial"] for block in blocks.values() if block["type"] == "thinking")
    assert (stream_text or None, stream_uses, stream_thought) == (content, want_calls, reasoning)
    message = messages_answer.message(shaper(case).completion(engine_events(case, [case["output"]])), "m", "signed".format)
    uses = [(block["name"], block["input"]) for block in message["content"] if block["type"] == "tool_use"]
    assert uses == want_calls and message["stop_reason"] == ("tool_use" if want_calls else "end_turn")


# --- the XML formats' values ------------------------------------------------------------------

QWEN_FILE = "<tool_call>\n<function=write_file>\n<parameter=path>\npackage.json\n</parameter>\n<parameter=content>\n{0}\n</parameter>\n</function>\n</tool_call>"
GLM_FILE = "<tool_call>write_file\n<arg_key>path</arg_key>\n<arg_value>package.json</arg_value>\n<arg_key>content</arg_key>\n<arg_value>{0}</arg_value>\n</tool_call>"
JSON_TEXT = '{"name": "demo", "private": true}'


@pytest.mark.parametrize("family, output", [("qwen3-coder", QWEN_FILE), ("glm", GLM_FILE)])
def test_a_string_parameter_whose_text_is_json_stays_a_string_when_its_schema_says_so(family, output):
    # An agent writing a JSON file: llama.cpp (since it reads schemas) keeps the text.
    text = output.format(JSON_TEXT)
    typed = named(family).typed_parser({"write_file"}, [TOOLS["write_file"]])
    _, calls = read_answer(typed, text)
    assert json.loads(calls[0]["function"]["arguments"]) == {"path": "package.json", "content": JSON_TEXT}


@pytest.mark.parametrize("family, output", [("qwen3-coder", QWEN_FILE), ("glm", GLM_FILE)])
def test_without_schemas_a_value_is_json_where_it_parses_as_llama_cpp_read_it_before_schemas(family, output):
    _, calls = read_answer(named(family).parser({"write_file"}), output.format(JSON_TEXT))
    assert json.loads(calls[0]["function"]["arguments"]) == {"path": "package.json", "content": json.loads(JSON_TEXT)}


@pytest.mark.parametrize("family, output", [("qwen3-coder", QWEN_FILE), ("glm", GLM_FILE)])
def test_a_string_value_streams_as_it_comes_not_when_it_ends(family, output):
    text = output.format("line one\nline two")
    stream = ToolCallStream(named(family).typed_parser({"write_file"}, [TOOLS["write_file"]]))
    sent = "".join(delta["tool_calls"][0]["function"]["arguments"] for delta in stream.feed(text[: text.index("two")]) if "tool_calls" in delta)
    assert sent.endswith('"content": "line one\\nline ')


@pytest.mark.parametrize("family, output", [("qwen3-coder", QWEN_FILE), ("glm", GLM_FILE)])
def test_an_answer_cut_inside_a_value_keeps_its_call_with_arguments_that_parse(family, output):
    text = output.format("half a file")
    cut = text[: text.index("half a fi") + len("half a fi")]  # max_tokens ran out there
    _, calls = read_answer(named(family).typed_parser({"write_file"}, [TOOLS["write_file"]]), cut)
    assert json.loads(calls[0]["function"]["arguments"]) == {"path": "package.json", "content": "half a fi"}


@pytest.mark.parametrize("family, output", [
    ("qwen3-coder", "<tool_call>\n<function=rm_rf>\n<parameter=path>\n/\n</parameter>\n</function>\n</tool_call>"),
    ("glm", "<tool_call>rm_rf\n<arg_key>path</arg_key>\n<arg_value>/</arg_value>\n</tool_call>"),
    ("deepseek-v3.1", '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>rm_rf<｜tool▁sep｜>{"path": "/"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'),
])
def test_a_call_of_a_function_that_was_not_offered_is_text(family, output):
    assert read_answer(named(family).parser({"get_weather"}), output) == (output, [])


def test_text_after_glms_calls_is_dropped_where_llama_cpp_keeps_it_as_content():
    # The project's rule for every format (deltas.py: a model that made up the tool's answer
    # after calling it); llama.cpp's GLM parser gives such text as content.
    output = "<tool_call>special_function\n<arg_key>arg1</arg_key>\n<arg_value>1</arg_value>\n</tool_call>Hello, world!"
    content, calls = read_answer(named("glm").parser({"special_function"}), output)
    assert content is None and [call["function"]["name"] for call in calls] == ["special_function"]


def test_glm_reads_its_thinking_block_even_without_tools():
    # Its answers open with the block whatever the request (tool_formats/glm.py).
    plain = ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": False, "tool_names": [], "tool_format": "glm"})
    (choice,) = plain.completion([{"event": "delta", "index": 0, "text": "\n<think>A greeting.</think>\nHello!", "finish_reason": "stop"}])["choices"]
    assert choice["message"]["content"] == "Hello!" and choice["message"]["reasoning_content"] == "A greeting."
