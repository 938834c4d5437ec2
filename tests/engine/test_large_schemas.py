"""Schemas whose bounds are past the grammar's budget (issue #49; backends/llama/
schema_bounds.py): their grammar stays within the budget whatever the numbers, lets through
what the schema allows past the budget, keeps what it can of a floor, and a strict schema is
compiled only where its grammar is exact. Checked by llama.cpp's grammar sampler on the
default model's vocabulary, as the engine decodes."""

from __future__ import annotations

import json
import time

import llama_cpp
import pytest

from llm_backend.backends.llama.grammar import GrammarError, grammar_for
from llm_backend.backends.llama.schema_bounds import MAX_SCHEMA_REPEAT, longest_token_bytes
from tests.engine.test_grammar_acceptance import accepts, vocabulary  # noqa: F401 - the fixture

# Claude Code's Workflow tool carries such a string; a list of paths, such a count.
SCRIPT = {"type": "object", "properties": {"script": {"type": "string", "maxLength": 524288}}, "required": ["script"]}
PATHS = {"type": "object", "properties": {"paths": {"type": "array", "items": {"type": "string"}, "maxItems": 100000}}, "required": ["paths"]}
FLOOR = {"type": "object", "properties": {"paths": {"type": "array", "items": {"type": "string"}, "minItems": 100000}}, "required": ["paths"]}
# Far more than a grammar within the budget writes out, far less than the bounds.
LONG = 3 * MAX_SCHEMA_REPEAT


def forced(parameters: dict, strict: bool | None = None, reach: int | None = None) -> str:
    function = {"name": "f", "parameters": parameters, **({"strict": strict} if strict is not None else {})}
    return grammar_for({"kind": "tool_calls", "tools": [{"type": "function", "function": function}], "parallel": False}, None, reach)


def call(arguments: str) -> str:
    return f'<tool_call>{{"name": "f", "arguments": {arguments}}}</tool_call>'


@pytest.mark.parametrize("parameters", [SCRIPT, PATHS, FLOOR], ids=["max-length", "max-items", "min-items"])
def test_the_grammar_stays_within_the_budget_whatever_the_bound(vocabulary, parameters):  # noqa: F811
    started = time.perf_counter()
    grammar = forced(parameters)
    sampler = llama_cpp.llama_sampler_init_grammar(vocabulary.vocab, grammar.encode(), b"root")
    assert sampler, "llama.cpp could not parse the grammar"
    llama_cpp.llama_sampler_free(sampler)
    # The bound written out would be 100000+ copies of a rule: megabytes, seconds.
    assert len(grammar) < 40 * MAX_SCHEMA_REPEAT and time.perf_counter() - started < 2


def test_a_string_longer_than_the_budget_is_let_through_and_the_call_ends(vocabulary):  # noqa: F811
    script = "print('hello')\\n" * (LONG // 16)
    assert accepts(vocabulary, forced(SCRIPT), call(json.dumps({"script": script})))


def test_more_items_than_the_budget_are_let_through(vocabulary):  # noqa: F811
    paths = [f"f{i}.py" for i in range(LONG)]
    assert accepts(vocabulary, forced(PATHS), call(json.dumps({"paths": paths})))


def test_a_floor_past_the_budget_is_kept_as_far_as_a_grammar_holds(vocabulary):  # noqa: F811
    grammar = forced(FLOOR)
    assert not accepts(vocabulary, grammar, call('{"paths": ["a.py", "b.py"]}'))
    assert accepts(vocabulary, grammar, call(json.dumps({"paths": ["a"] * (MAX_SCHEMA_REPEAT + 5)})))


def test_a_bound_within_the_budget_is_still_enforced(vocabulary):  # noqa: F811
    bounded = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 5}}, "required": ["s"]}
    assert accepts(vocabulary, forced(bounded), call('{"s": "12345"}'))
    assert not accepts(vocabulary, forced(bounded), call('{"s": "123456"}'))


def test_a_strict_maximum_no_answer_can_reach_is_compiled_exactly(vocabulary):  # noqa: F811
    # An answer of 1000 tokens of at most 81 bytes cannot hold 524288 characters.
    assert forced(SCRIPT, strict=True, reach=81_000) == forced(SCRIPT)


@pytest.mark.parametrize(
    "parameters, reach, says",
    [(SCRIPT, 600_000, "'maxLength' is 524288"), (PATHS, None, "'maxItems' is 100000"), (FLOOR, 10, "'minItems' is 100000")],
    ids=["reachable-maximum", "unknown-reach", "minimum"],
)
def test_a_strict_bound_the_grammar_cannot_keep_is_refused_naming_it(parameters, reach, says):
    with pytest.raises(GrammarError) as raised:
        forced(parameters, strict=True, reach=reach)
    assert raised.value.param == "tools" and raised.value.code == "invalid_function_parameters"
    assert says in str(raised.value) and "'strict' to false" in str(raised.value)


def test_a_strict_response_format_is_held_to_the_same(vocabulary):  # noqa: F811
    schema = {"type": "string", "maxLength": 5000}
    assert grammar_for({"kind": "json_schema", "schema": schema}, None, 100)
    with pytest.raises(GrammarError) as raised:
        grammar_for({"kind": "json_schema", "schema": schema, "strict": True}, None, 100_000)
    assert raised.value.param == "response_format.json_schema.schema" and raised.value.code == "invalid_json_schema"
    assert grammar_for({"kind": "json_schema", "schema": schema, "strict": True}, None, 5000)


def test_the_longest_token_is_measured_on_the_vocabulary(vocabulary):  # noqa: F811
    # What reach multiplies. SmolLM2 has a token of a newline and 80 spaces: more than
    # budgets.MAX_CHARS_PER_TOKEN (64), so the vocabulary is measured, not assumed.
    longest = longest_token_bytes(vocabulary.vocab, llama_cpp.llama_vocab_n_tokens(vocabulary.vocab))
    assert vocabulary.tokenize(b"\n" + b" " * 80, add_bos=False, special=False) == [46778]
    assert longest == 81
