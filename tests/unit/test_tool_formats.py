"""Each model family's own tool calling, with its real chat template (tests/fixtures/
chat_templates: the templates the families publish, as llama.cpp's tests keep them) and an
answer in the family's published format: the template renders the tools and the history's
calls natively, the answer becomes the tool_calls OpenAI sends, whole and streamed, in pieces
cut at every character. No tool-trained weights can be installed here: the answers are the
families' documented shapes, written out, not sampled from their models."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from llm_backend.backends.llama.engine.errors import RequestError
from llm_backend.backends.llama.engine.prompts import ChatTemplate
from llm_backend.backends.llama.shapers import ChatShaper
from llm_backend.backends.llama.tool_formats import named
from llm_backend.backends.llama.tool_formats.base import short_id
from llm_backend.backends.llama.tool_formats.deltas import ToolCallStream, read_answer

TEMPLATES = Path(__file__).resolve().parents[1] / "fixtures" / "chat_templates"


def function(name: str, description: str, properties: dict) -> dict:
    parameters = {"type": "object", "properties": properties, "required": list(properties)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


WEATHER = function("get_weather", "Current weather in a city", {"city": {"type": "string", "description": "City name"}})
TIME = function("get_time", "Current time in a time zone", {"tz": {"type": "string", "description": "IANA zone"}})
SEARCH = function("brave_search", "Search the web", {"query": {"type": "string", "description": "What to look for"}})
OPENAI_CALL_ID = "call_Hs6LyPHbU3IJFbrDT4JhIHyd"
HISTORY = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": OPENAI_CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]},
    {"role": "tool", "tool_call_id": OPENAI_CALL_ID, "content": "18C and sunny"},
    {"role": "assistant", "content": "It is 18C and sunny in Paris."},
    {"role": "user", "content": "And in Oslo, and what time is it there?"},
]


@dataclass
class Family:
    template: str
    format: str
    # How the history's call is written for the model (its own syntax), in the prompt.
    history_call: str
    # An answer in the family's format, and the OpenAI calls (name, arguments) it holds.
    answer: str
    calls: list[tuple[str, str]]
    content: str | None = None
    tools: list[dict] = field(default_factory=lambda: [WEATHER, TIME])


FAMILIES = {
    "qwen2.5": Family(
        "Qwen-Qwen2.5-7B-Instruct.jinja", "hermes",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        'I will look both up.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Oslo"}}\n</tool_call>',
        [("get_weather", '{"city": "Oslo"}'), ("get_time", '{"tz": "Europe/Oslo"}')],
        content="I will look both up.",
    ),
    "qwen3": Family(
        "Qwen-Qwen3-0.6B.jinja", "hermes",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
        [("get_weather", '{"city": "Oslo"}')],
    ),
    "hermes-2-pro": Family(
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "hermes",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        # Its first prompt format asked for the arguments before the name: both are read.
        '<tool_call>\n{"arguments": {"city": "Oslo"}, "name": "get_weather"}\n</tool_call>',
        [("get_weather", '{"city": "Oslo"}')],
    ),
    "llama-3.1": Family(
        "meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3",
        '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
        '{"name": "get_weather", "parameters": {"city": "Oslo"}}',
        [("get_weather", '{"city": "Oslo"}')],
    ),
    "llama-3.1 built-in": Family(
        "meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3",
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
        '<|python_tag|>brave_search.call(query="weather in Oslo")',
        [("brave_search", '{"query": "weather in Oslo"}')],
        tools=[WEATHER, SEARCH],
    ),
    "llama-3.2": Family(
        "meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3",
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
        '{"type": "function", "name": "get_weather", "parameters": {"city": "Oslo"}}; '
        '{"type": "function", "name": "get_time", "parameters": {"tz": "Europe/Oslo"}}',
        [("get_weather", '{"city": "Oslo"}'), ("get_time", '{"tz": "Europe/Oslo"}')],
    ),
    "mistral-nemo": Family(
        "mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral",
        f'[TOOL_CALLS][{{"name": "get_weather", "arguments": {{"city": "Paris"}}, "id": "{short_id(OPENAI_CALL_ID)}"}}]',
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "Xk2m9PqR4"}, '
        '{"name": "get_time", "arguments": {"tz": "Europe/Oslo"}, "id": "Zt7Lw1Bn8"}]',
        [("get_weather", '{"city": "Oslo"}'), ("get_time", '{"tz": "Europe/Oslo"}')],
    ),
    "mistral-small-3.2": Family(
        "Mistral-Small-3.2-24B-Instruct-2506.jinja", "mistral-args",
        '[TOOL_CALLS]get_weather[CALL_ID]' + short_id(OPENAI_CALL_ID) + '[ARGS]{"city": "Paris"}',
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}[TOOL_CALLS]get_time[ARGS]{"tz": "Europe/Oslo"}',
        [("get_weather", '{"city": "Oslo"}'), ("get_time", '{"tz": "Europe/Oslo"}')],
    ),
    "devstral": Family(
        "unsloth-mistral-Devstral-Small-2507.jinja", "mistral-args",
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}',
        'Let me check.[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}',
        [("get_weather", '{"city": "Oslo"}')],
        content="Let me check.",
    ),
    "gpt-oss": Family(
        "openai-gpt-oss-120b.jinja", "gpt-oss",
        '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}<|call|>',
        "<|channel|>analysis<|message|>The user wants Oslo's weather. Call get_weather.<|end|>"
        '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Oslo"}',
        [("get_weather", '{"city":"Oslo"}')],
    ),
    "functionary-v3.1": Family(
        "meetkai-functionary-medium-v3.1.jinja", "functionary",
        '<function=get_weather>{"city": "Paris"}</function>',
        '<function=get_weather>{"city": "Oslo"}</function><function=get_time>{"tz": "Europe/Oslo"}</function>',
        [("get_weather", '{"city": "Oslo"}'), ("get_time", '{"tz": "Europe/Oslo"}')],
    ),
}


def template_of(family: Family) -> ChatTemplate:
    return ChatTemplate.of_text((TEMPLATES / family.template).read_text(), "<s>", "</s>")


def shaper(family: Family) -> ChatShaper:
    names = sorted(tool["function"]["name"] for tool in family.tools)
    return ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": False, "tool_names": names, "tool_format": family.format})


def delta(text: str, reason: str | None = None) -> dict:
    return {"event": "delta", "index": 0, "text": text, **({"finish_reason": reason} if reason else {})}


def stream(family: Family, pieces: list[str]) -> list[dict]:
    async def events():
        yield {"event": "prompt"}
        for index, piece in enumerate(pieces):
            yield delta(piece, "stop" if index == len(pieces) - 1 else None)

    async def collect():
        return [chunk async for chunk in shaper(family).chunks(events())]

    return asyncio.run(collect())


@pytest.mark.parametrize("name", FAMILIES)
def test_the_family_is_recognised_from_its_template(name):
    assert template_of(FAMILIES[name]).tool_format.name == FAMILIES[name].format


@pytest.mark.parametrize("name", FAMILIES)
def test_its_template_renders_the_tools_and_the_historys_call_in_the_familys_syntax(name):
    family = FAMILIES[name]
    prompt, _, _ = template_of(family).render(HISTORY, family.tools, "auto")
    assert family.history_call in prompt
    assert "18C and sunny" in prompt and "Current weather in a city" in prompt
    assert OPENAI_CALL_ID not in prompt or family.format not in ("mistral", "mistral-args")


@pytest.mark.parametrize("name", FAMILIES)
def test_an_answer_in_the_familys_format_is_openais_tool_calls(name):
    family = FAMILIES[name]
    answer = shaper(family).completion([{"event": "prompt"}, delta(family.answer, "stop")])
    (choice,) = answer["choices"]
    calls = choice["message"]["tool_calls"]
    assert [(call["function"]["name"], call["function"]["arguments"]) for call in calls] == family.calls
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", call["id"]) and call["type"] == "function" for call in calls)
    assert all(json.loads(call["function"]["arguments"]) for call in calls)
    assert choice["message"]["content"] == family.content and choice["finish_reason"] == "tool_calls"


def assembled(chunks: list[dict]) -> tuple[str | None, list[tuple[str, str]], str | None]:
    """What a client (the SDK's stream helper) makes of the chunks, checking they are the
    shape OpenAI streams: a call's index, id, type and name first, then arguments alone."""
    content, calls, reason = [], {}, None
    for chunk in chunks[1:]:
        (choice,) = chunk["choices"]
        reason = choice["finish_reason"] or reason
        for entry in choice["delta"].get("tool_calls", []):
            if entry["index"] not in calls:
                assert set(entry) == {"index", "id", "type", "function"} and entry["function"]["arguments"] == ""
                calls[entry["index"]] = [entry["function"]["name"], ""]
            else:
                assert set(entry) == {"index", "function"} and set(entry["function"]) == {"arguments"}
                calls[entry["index"]][1] += entry["function"]["arguments"]
        content.append(choice["delta"].get("content") or "")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    return ("".join(content) or None), [tuple(calls[index]) for index in sorted(calls)], reason


@pytest.mark.parametrize("name", FAMILIES)
def test_the_streamed_deltas_say_what_the_whole_answer_says_wherever_the_text_is_cut(name):
    family = FAMILIES[name]
    expected = (family.content, family.calls, "tool_calls")
    answer = family.answer
    for cut in range(len(answer) + 1):
        assert assembled(stream(family, [answer[:cut], answer[cut:]])) == expected, f"cut at {cut}"
    assert assembled(stream(family, list(answer))) == expected  # a character at a time


def test_gpt_oss_answers_are_read_as_channels_even_without_tools():
    # Its analysis channel is its reasoning, which OpenAI does not show either.
    family = FAMILIES["gpt-oss"]
    text = "<|channel|>analysis<|message|>A greeting.<|end|><|start|>assistant<|channel|>final<|message|>Hello! How can I help?"
    plain = ChatShaper("m", "fp", {"n": 1, "logprobs": False, "include_usage": False, "tool_names": [], "tool_format": family.format})
    (choice,) = plain.completion([delta(text, "stop")])["choices"]
    assert choice["message"]["content"] == "Hello! How can I help?" and "tool_calls" not in choice["message"]


def test_a_call_of_a_function_that_was_not_offered_is_text():
    for family in ("hermes", "llama3", "mistral", "functionary"):
        answer = {
            "hermes": '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
            "llama3": '{"name": "rm_rf", "parameters": {}}',
            "mistral": '[TOOL_CALLS][{"name": "rm_rf", "arguments": {}}]',
            "functionary": "<function=rm_rf>{}</function>",
        }[family]
        assert read_answer(named(family).parser({"get_weather"}), answer) == (answer, []), family


def test_a_json_answer_of_a_llama_model_that_is_no_call_stays_its_answer():
    text = '{"answer": 42, "unit": "none"}'
    assert read_answer(named("llama3").parser({"get_weather"}), text) == (text, [])


def test_a_llama_built_in_call_followed_by_more_code_is_text():
    # ``f(<its arguments>)`` parses as no call: it was read as one (AttributeError, a 500).
    text = '<|python_tag|>brave_search.call(query="weather") + (1)'
    assert read_answer(named("llama3").parser({"brave_search"}), text) == (text, [])


def test_mistral_templates_get_ids_of_nine_letters_and_digits_the_same_for_a_call_and_its_result():
    family = FAMILIES["mistral-nemo"]
    prompt, _, _ = template_of(family).render(HISTORY, family.tools, "auto")
    nine = short_id(OPENAI_CALL_ID)
    assert re.fullmatch(r"[A-Za-z0-9]{9}", nine) and prompt.count(nine) == 2


def test_several_history_calls_become_one_assistant_message_each_for_llama():
    # Its template raises on more than one call in a message.
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": "get_time", "arguments": "{}"}} for i in range(2)]
    history = [HISTORY[1], {"role": "assistant", "content": "", "tool_calls": calls},
               *({"role": "tool", "tool_call_id": f"call_{i}", "content": f"{i}:00"} for i in range(2))]
    prompt, _, _ = template_of(FAMILIES["llama-3.1"]).render(history, [TIME], "auto")
    assert prompt.count('{"name": "get_time", "parameters": {}}') == 2


def test_messages_a_template_refuses_are_the_clients_400_naming_messages():
    twice = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]  # Mistral wants turns in order
    with pytest.raises(RequestError) as raised:
        template_of(FAMILIES["mistral-nemo"]).render(twice)
    assert raised.value.status == 400 and raised.value.param == "messages" and "alternate" in raised.value.message


@pytest.mark.parametrize(
    "template",
    [
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",  # SmolLM2's kind
        "{# <tool_call> is mentioned but no tools are printed #}{% for m in messages %}{{ m.content }}{% endfor %}",
        (TEMPLATES / "meetkai-functionary-medium-v3.2.jinja").read_text(),  # >>> segments: not read here
    ],
)
def test_a_template_of_no_family_or_that_prints_no_tools_gets_the_convention(template):
    chat = ChatTemplate.of_text(template)
    assert chat.tool_format.name == "convention"
    prompt, _, _ = chat.render([{"role": "user", "content": "Weather?"}], [WEATHER], "required")
    assert "You can call functions." in prompt and "You must call a function now." in prompt


def test_the_convention_writes_the_history_as_plain_turns():
    prompt, _, _ = ChatTemplate.of_text("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}").render(HISTORY, [WEATHER])
    assert '[assistant] <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>' in prompt
    assert f'[user] <tool_response id="{OPENAI_CALL_ID}">18C and sunny</tool_response>' in prompt


def test_a_tool_format_named_in_the_config_wins_over_the_template():
    chat = ChatTemplate.of_text((TEMPLATES / FAMILIES["qwen2.5"].template).read_text(), tool_format="convention")
    assert chat.tool_format.name == "convention"


# The convention's reading (SmolLM2 and every model without a tool template), kept from
# before the formats: whole and streamed.

CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "tags": ["a}", "b"]}}</tool_call>'
NAMES = {"get_weather", "get_time"}


def convention(text: str) -> tuple[str | None, list[tuple[str, str]]]:
    content, calls = read_answer(named("convention").parser(NAMES), text)
    return content, [(call["function"]["name"], call["function"]["arguments"]) for call in calls]


def test_a_plain_answer_has_no_tool_calls():
    assert convention("The weather is nice.") == ("The weather is nice.", [])


def test_a_closing_tag_inside_an_argument_string_stays_in_the_argument():
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "a</tool_call>b"}}</tool_call>'
    assert convention(text) == (None, [("get_weather", '{"city": "a</tool_call>b"}')])


def test_text_after_the_calls_is_dropped():
    assert convention(CALL + " and that is all") == (None, [("get_weather", json.dumps({"city": "Paris", "unit": "c", "tags": ["a}", "b"]}))])


def test_an_answer_cut_short_keeps_its_whole_calls_and_the_cut_one():
    content, calls = convention(CALL + '\n<tool_call>{"name": "get_time", "arguments": {"tz": "Europe/Par')
    assert content is None and calls[1] == ("get_time", '{"tz": "Europe/Par')


def test_an_answer_cut_inside_the_first_name_is_text():
    assert convention('<tool_call>{"name": "get_w') == ('<tool_call>{"name": "get_w', [])


def test_a_short_answer_held_back_as_a_possible_tag_is_released_at_the_end():
    stream = ToolCallStream(named("convention").parser(NAMES))
    assert stream.feed("<") == []
    assert stream.finish() == [{"content": "<"}]


def test_text_that_only_looks_like_a_tag_streams_unchanged():
    text = "<to be or not to be> is the question"
    stream = ToolCallStream(named("convention").parser(NAMES))
    deltas = [delta for char in text for delta in stream.feed(char)] + stream.finish()
    assert "".join(delta["content"] for delta in deltas) == text and not stream.called
