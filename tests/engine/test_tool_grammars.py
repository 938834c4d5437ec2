"""tool_choice required or named, in each family's own syntax: the grammar a forced call is
decoded under lets the family's answer through and nothing of another family's, checked by
llama.cpp's grammar sampler on the default model's vocabulary (tests/engine/
test_grammar_acceptance.py: the markers are spelt in that vocabulary's ordinary tokens)."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.grammar import grammar_for
from llm_backend.backends.llama.tool_formats import named
from llm_backend.backends.llama.tool_formats.deltas import read_answer
from tests.engine.test_grammar_acceptance import accepts, vocabulary  # noqa: F401 - the fixture
from tests.unit.test_tool_formats import TIME, WEATHER

ONE = '{"city": "Oslo"}'
# A forced answer in each format: calls only, as its models write them.
FORCED = {
    "hermes": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
              '<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Oslo"}}\n</tool_call>',
    "convention": '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',
    "llama3": '{"name": "get_weather", "parameters": {"city": "Oslo"}}',
    "mistral": '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_time", "arguments": {"tz": "UTC"}}]',
    "mistral-args": '[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}[TOOL_CALLS]get_time[ARGS]{"tz": "UTC"}',
    "gpt-oss": "<|channel|>analysis<|message|>Weather asked: call the tool.<|end|><|start|>assistant"
               '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo"}',
    "functionary": '<function=get_weather>{"city": "Oslo"}</function>',
}


def grammar(format_name: str, parallel: bool = True) -> str:
    return grammar_for({"kind": "tool_calls", "tools": [WEATHER, TIME], "parallel": parallel}, named(format_name))


@pytest.mark.parametrize("format_name", FORCED)
def test_a_forced_call_in_the_familys_syntax_is_let_through_and_reads_as_the_call(vocabulary, format_name):  # noqa: F811
    answer = FORCED[format_name]
    assert accepts(vocabulary, grammar(format_name), answer)
    content, calls = read_answer(named(format_name).parser({"get_weather", "get_time"}), answer)
    assert content is None and calls[0]["function"]["name"] == "get_weather" and calls[0]["function"]["arguments"].replace(" ", "") == ONE.replace(" ", "")


@pytest.mark.parametrize("format_name", FORCED)
def test_another_familys_syntax_or_plain_text_is_refused(vocabulary, format_name):  # noqa: F811
    others = [answer for name, answer in FORCED.items() if name != format_name and not (
        {name, format_name} <= {"hermes", "convention"})]
    for answer in [*others, "It is sunny."]:
        assert not accepts(vocabulary, grammar(format_name), answer), answer


@pytest.mark.parametrize("format_name", ["hermes", "mistral", "mistral-args", "functionary"])
def test_one_call_only_when_parallel_calls_are_off(vocabulary, format_name):  # noqa: F811
    two_calls = FORCED[format_name] * (2 if format_name == "functionary" else 1)
    assert accepts(vocabulary, grammar(format_name), two_calls)
    assert not accepts(vocabulary, grammar(format_name, parallel=False), two_calls)


def test_a_function_that_was_not_offered_cannot_be_called(vocabulary):  # noqa: F811
    assert not accepts(vocabulary, grammar("gpt-oss"), '<|channel|>commentary to=functions.rm_rf <|constrain|>json<|message|>{}')
    assert not accepts(vocabulary, grammar("llama3"), '{"name": "rm_rf", "parameters": {}}')


def test_the_conventions_forced_call_offers_no_newline_around_its_json(vocabulary):  # noqa: F811
    # Today's grammar, kept: a small model offered a newline takes it, and an agent's loop
    # sharing one max_output_tokens budget between the call and the answer ran out
    # (tests/e2e/test_mcp.py's Agents SDK run). Qwen's own format writes them.
    assert not accepts(vocabulary, grammar("convention"), '<tool_call>\n{"name": "get_weather"')
    assert accepts(vocabulary, grammar("hermes"), '<tool_call>\n{"name": "get_weather"')
