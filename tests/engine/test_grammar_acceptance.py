"""What the structured-output grammars let through, checked by llama.cpp's own grammar
sampler on the default model's vocabulary (loaded alone: ~0.1 s), token by token as the
engine would draw them."""

from __future__ import annotations

import ctypes
import json

import llama_cpp
import pytest
from llama_cpp import _internals
from llama_cpp.llama_grammar import json_schema_to_gbnf

from llm_backend.backends.llama.grammar import grammar_for
from tests.support.models import default_gguf

POEM = {"type": "object", "properties": {"poem": {"type": "string"}}, "required": ["poem"], "additionalProperties": False}
TOOL = {
    "type": "function",
    "function": {
        "name": "note",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
}
SPECS = {
    "json_object": {"kind": "json_object"},
    "json_schema": {"kind": "json_schema", "schema": POEM},
    "bounded string": {"kind": "json_schema", "schema": {"type": "string", "maxLength": 20}},
    "pattern": {"kind": "json_schema", "schema": {"type": "string", "pattern": "^.*$"}},
    "tool_calls": {"kind": "tool_calls", "tools": [TOOL], "parallel": True},
}


@pytest.fixture(scope="module")
def vocabulary():
    from llama_cpp import _logger

    _logger.set_verbose(False)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = _internals.LlamaModel(path_model=str(default_gguf()), params=params, verbose=False)
    yield model
    model.close()


def accepts(model, grammar: str, text: str) -> bool:
    """Whether the grammar lets the model write ``text`` (as a prefix of its answer)."""
    sampler = llama_cpp.llama_sampler_init_grammar(model.vocab, grammar.encode(), b"root")
    assert sampler, "llama.cpp could not parse the grammar"
    try:
        for token in model.tokenize(text.encode(), add_bos=False, special=False):
            candidate = (llama_cpp.llama_token_data * 1)()
            candidate[0].id, candidate[0].logit, candidate[0].p = token, 0.0, 0.0
            array = llama_cpp.llama_token_data_array(data=candidate, size=1, selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
            if candidate[0].logit == float("-inf"):
                return False
            llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


@pytest.mark.parametrize("name", SPECS)
def test_every_built_grammar_parses_in_llama_cpp(vocabulary, name):
    grammar = grammar_for(SPECS[name])
    sampler = llama_cpp.llama_sampler_init_grammar(vocabulary.vocab, grammar.encode(), b"root")
    assert sampler
    llama_cpp.llama_sampler_free(sampler)


@pytest.mark.parametrize(
    "name, text",
    [
        ("json_object", '{"poem": "one\ntwo"}'),
        ("json_schema", '{"poem": "one\ntwo"}'),
        ("json_schema", '{"poem": "one\ttwo"}'),
        ("bounded string", '"one\ntwo"'),
        ("pattern", '"one\ttwo"'),
        ("tool_calls", '<tool_call>{"name": "note", "arguments": {"text": "one\ntwo"}}</tool_call>'),
    ],
)
def test_a_raw_control_character_inside_a_string_is_refused(vocabulary, name, text):
    assert not accepts(vocabulary, grammar_for(SPECS[name]), text)


@pytest.mark.parametrize(
    "name, text",
    [
        ("json_schema", '{"poem": "one\\ntwo"}'),
        ("bounded string", '"one\\ttwo"'),
        ("tool_calls", '<tool_call>{"name": "note", "arguments": {"text": "one\\ntwo"}}</tool_call>'),
    ],
)
def test_an_escaped_control_character_inside_a_string_is_accepted(vocabulary, name, text):
    assert accepts(vocabulary, grammar_for(SPECS[name]), text)


def test_a_raw_newline_between_json_tokens_is_still_accepted(vocabulary):
    assert accepts(vocabulary, grammar_for(SPECS["json_object"]), '{\n  "poem": "x"\n}')


def test_the_tool_grammar_lets_a_closing_tag_appear_inside_an_argument_string(vocabulary):
    # Why tool calls are parsed as JSON between the tags, not split on the closing tag.
    text = '<tool_call>{"name": "note", "arguments": {"text": "a</tool_call>b"}}</tool_call>'
    assert accepts(vocabulary, grammar_for(SPECS["tool_calls"]), text)


def test_the_converters_own_grammar_lets_a_raw_newline_through(vocabulary):
    # The defect grammar.py corrects: if llama-cpp-python fixes it, the correction can go.
    assert accepts(vocabulary, json_schema_to_gbnf(json.dumps(POEM)), '{"poem": "one\ntwo"}')


def test_an_enum_value_with_a_tab_is_written_escaped_never_raw(vocabulary):
    grammar = grammar_for({"kind": "json_schema", "schema": {"enum": ["a\tb"]}})
    assert accepts(vocabulary, grammar, json.dumps("a\tb"))
    assert not accepts(vocabulary, grammar, '"a\tb"')


@pytest.mark.parametrize("value", ['say "hi"', "c:\\temp"])
def test_a_const_with_a_quote_or_a_backslash_is_written_as_json_writes_it(vocabulary, value):
    grammar = grammar_for({"kind": "json_schema", "schema": {"type": "object", "properties": {"v": {"const": value}}, "required": ["v"]}})
    assert accepts(vocabulary, grammar, json.dumps({"v": value}))


def test_a_pattern_newline_is_written_escaped_never_raw(vocabulary):
    grammar = grammar_for({"kind": "json_schema", "schema": {"type": "string", "pattern": "^one\\ntwo$"}})
    assert accepts(vocabulary, grammar, json.dumps("one\ntwo"))
    assert not accepts(vocabulary, grammar, '"one\ntwo"')


def test_a_pattern_quote_is_written_escaped(vocabulary):
    grammar = grammar_for({"kind": "json_schema", "schema": {"type": "string", "pattern": '^say "[a-z]+"$'}})
    assert accepts(vocabulary, grammar, json.dumps('say "hi"'))
    assert not accepts(vocabulary, grammar, '"say "hi""')
