"""Grammars for structured output: what they are built from, and what their text allows."""

from __future__ import annotations

import re

import pytest

from llm_backend.backends.llama.grammar import GrammarError, grammar_for
from llm_backend.backends.llama.schema_grammar import json_string_safe

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


# Whether llama.cpp accepts these grammars, and what they accept: tests/engine/test_grammar_acceptance.py.
SCHEMA_STRINGS = {
    "type": "object",
    "properties": {
        "poem": {"type": "string"},
        "short": {"type": "string", "maxLength": 4},
        "line": {"type": "string", "pattern": "^.[^,]*$"},
        "extra": {"type": "object"},
    },
    "required": ["poem"],
}
# Read left to right: a quoted literal may hold "[^" as text, a class may hold a quote.
LITERAL_OR_CLASS = re.compile(r'"(?:[^"\\]|\\.)*"|\[(\^?)((?:[^\]\\]|\\.)*)\]')


def negated_classes(grammar: str) -> list[str]:
    return [body for negated, body in LITERAL_OR_CLASS.findall(grammar) if negated]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "json_schema", "schema": SCHEMA_STRINGS},
        {"kind": "tool_calls", "tools": [{"type": "function", "function": {"name": "f", "parameters": SCHEMA_STRINGS}}]},
        {"kind": "tool_calls", "tools": TOOLS, "parallel": True},
    ],
)
def test_every_negated_class_of_a_built_grammar_excludes_what_json_strings_cannot_hold_raw(spec):
    classes = negated_classes(grammar_for(spec))
    assert len(classes) >= 1
    for body in classes:
        assert all(part in body for part in ('"', "\\\\", "\\x00-\\x1F")), body


def test_json_string_safety_leaves_quoted_literals_and_plain_classes_alone():
    assert json_string_safe('"[^x]" ["a] [^a]') == '"[^x]" ["a] [^a"\\\\\\x00-\\x1F\\x7F]'


def test_tool_grammar_names_only_the_given_functions():
    grammar = grammar_for({"kind": "tool_calls", "tools": TOOLS[:1], "parallel": False})
    assert "get_weather" in grammar and "get_time" not in grammar
    assert "<tool_call>" in grammar


def test_no_spec_means_no_grammar():
    assert grammar_for(None) is None


def test_an_unknown_kind_is_an_error():
    with pytest.raises(GrammarError):
        grammar_for({"kind": "xml"})
