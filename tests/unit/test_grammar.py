"""Grammars for structured output compile in llama.cpp and accept exactly what they should."""

from __future__ import annotations

import llama_cpp
import pytest

from llm_backend.backends.llama.grammar import GrammarError, grammar_for

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


def compiles(grammar: str) -> bool:
    return llama_cpp.LlamaGrammar.from_string(grammar, verbose=False) is not None


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "json_object"},
        {"kind": "json_schema", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
        {"kind": "tool_calls", "tools": TOOLS, "parallel": True},
        {"kind": "tool_calls", "tools": TOOLS[:1], "parallel": False},
    ],
)
def test_grammars_compile(spec):
    assert compiles(grammar_for(spec))


def test_tool_grammar_names_only_the_given_functions():
    grammar = grammar_for({"kind": "tool_calls", "tools": TOOLS[:1], "parallel": False})
    assert "get_weather" in grammar and "get_time" not in grammar
    assert "<tool_call>" in grammar


def test_no_spec_means_no_grammar():
    assert grammar_for(None) is None


def test_an_unknown_kind_is_an_error():
    with pytest.raises(GrammarError):
        grammar_for({"kind": "xml"})
