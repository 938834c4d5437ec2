"""tool_choice required or named for the coding agents' models (Qwen3-Coder, GLM, DeepSeek
V3.1): the grammar a forced call is decoded under lets the family's answer through, as its
template lays a call out, and reads as the call; another family's syntax, a function not
offered, a second call when parallel calls are off, and a value of the wrong type are refused.
Checked by llama.cpp's grammar sampler on the default model's vocabulary
(tests/engine/test_grammar_acceptance.py). A string value is raw text: any text but the tag
that ends it."""

from __future__ import annotations

import json

import pytest

from llm_backend.backends.llama.grammar import grammar_for
from llm_backend.backends.llama.tool_formats import named
from llm_backend.backends.llama.tool_formats.deltas import read_answer
from tests.engine.test_grammar_acceptance import accepts, vocabulary  # noqa: F401 - the fixture
from tests.unit.test_tool_formats import TIME, WEATHER

PAGES = {"type": "function", "function": {"name": "read_pages", "description": "Read pages of a file", "parameters": {
    "type": "object",
    "properties": {"path": {"type": "string"}, "pages": {"type": "array", "items": {"type": "integer"}}, "raw": {"type": "boolean"}},
    "required": ["path", "pages"],
}}}
TOOLS = [WEATHER, TIME, PAGES]
TEXT = 'a "quoted" <b>tag</b>,\nmultiple\tlines'
# A forced answer in each format, as its template lays a call out: a string value with quotes,
# tags and lines, then an array of integers.
FORCED = {
    "qwen3-coder": f"<tool_call>\n<function=read_pages>\n<parameter=path>\n{TEXT}\n</parameter>\n"
                   "<parameter=pages>\n[1, 2]\n</parameter>\n</function>\n</tool_call>",
    "glm": f"<tool_call>read_pages\n<arg_key>path</arg_key>\n<arg_value>{TEXT}</arg_value>\n"
           "<arg_key>pages</arg_key>\n<arg_value>[1, 2]</arg_value>\n</tool_call>",
    "deepseek-v3.1": "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>read_pages<｜tool▁sep｜>"
                     + json.dumps({"path": TEXT, "pages": [1, 2]}) + "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
}
SECOND = {
    "qwen3-coder": "\n<tool_call>\n<function=get_time>\n<parameter=tz>\nUTC\n</parameter>\n</function>\n</tool_call>",
    "glm": "\n<tool_call>get_time\n<arg_key>tz</arg_key>\n<arg_value>UTC</arg_value>\n</tool_call>",
    "deepseek-v3.1": '<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"tz": "UTC"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
}


def grammar(format_name: str, parallel: bool = True) -> str:
    return grammar_for({"kind": "tool_calls", "tools": TOOLS, "parallel": parallel}, named(format_name))


def two_calls(format_name: str) -> str:
    if format_name == "deepseek-v3.1":
        return FORCED[format_name].removesuffix("<｜tool▁calls▁end｜>") + SECOND[format_name]
    return FORCED[format_name] + SECOND[format_name]


@pytest.mark.parametrize("format_name", FORCED)
def test_a_forced_call_laid_out_as_the_template_does_is_let_through_and_reads_as_the_call(vocabulary, format_name):  # noqa: F811
    answer = FORCED[format_name]
    assert accepts(vocabulary, grammar(format_name), answer)
    content, calls = read_answer(named(format_name).typed_parser({"read_pages"}, [PAGES]), answer)
    assert content is None and json.loads(calls[0]["function"]["arguments"]) == {"path": TEXT, "pages": [1, 2]}


@pytest.mark.parametrize("format_name", FORCED)
def test_another_familys_syntax_or_plain_text_is_refused(vocabulary, format_name):  # noqa: F811
    others = [answer for name, answer in FORCED.items() if name != format_name]
    hermes = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    for answer in [*others, hermes, "It is sunny."]:
        assert not accepts(vocabulary, grammar(format_name), answer), answer


@pytest.mark.parametrize("format_name", FORCED)
def test_one_call_only_when_parallel_calls_are_off(vocabulary, format_name):  # noqa: F811
    assert accepts(vocabulary, grammar(format_name), two_calls(format_name))
    assert not accepts(vocabulary, grammar(format_name, parallel=False), two_calls(format_name))


@pytest.mark.parametrize("format_name, answer", [
    ("qwen3-coder", "<tool_call>\n<function=rm_rf>"),
    ("glm", "<tool_call>rm_rf\n"),
    ("deepseek-v3.1", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>rm_rf<｜tool▁sep｜>"),
])
def test_a_function_that_was_not_offered_cannot_be_called(vocabulary, format_name, answer):  # noqa: F811
    assert not accepts(vocabulary, grammar(format_name), answer)


@pytest.mark.parametrize("format_name, answer", [
    ("qwen3-coder", "<tool_call>\n<function=read_pages>\n<parameter=path>\na\n</parameter>\n<parameter=pages>\nfirst"),
    ("glm", "<tool_call>read_pages\n<arg_key>path</arg_key>\n<arg_value>a</arg_value>\n<arg_key>pages</arg_key>\n<arg_value>first"),
])
def test_a_value_that_is_not_a_string_is_its_schemas_json(vocabulary, format_name, answer):  # noqa: F811
    assert not accepts(vocabulary, grammar(format_name), answer)


@pytest.mark.parametrize("format_name, answer", [
    ("qwen3-coder", "<tool_call>\n<function=get_time>\n<parameter=tz>\nUTC</parameter> and more"),
    ("glm", "<tool_call>get_time\n<arg_key>tz</arg_key>\n<arg_value>UTC</arg_value> and more"),
])
def test_a_string_value_ends_at_its_closing_tag(vocabulary, format_name, answer):  # noqa: F811
    # The parser ends the value there: the grammar lets nothing run on inside it.
    assert not accepts(vocabulary, grammar(format_name), answer)
