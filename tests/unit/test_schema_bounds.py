"""The rewrite of repetitions past the grammar's budget (backends/llama/schema_bounds.py):
what changes, what never does, and when a strict schema is refused."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.schema_bounds import MAX_SCHEMA_REPEAT, UnkeptBound, within_budget


def rewrite(schema, reach=None, strict=False):
    return within_budget(schema, reach, strict, "function 'f'")


def test_a_schema_within_the_budget_is_the_same_object():
    schema = {"type": "object", "properties": {"s": {"type": "string", "maxLength": MAX_SCHEMA_REPEAT}}}
    assert rewrite(schema) is schema


def test_a_maximum_past_the_budget_becomes_unbounded_a_minimum_the_budget():
    schema = {"type": "array", "items": {"type": "string", "maxLength": 524288}, "minItems": 5000, "maxItems": 100000}
    assert rewrite(schema) == {"type": "array", "items": {"type": "string"}, "minItems": MAX_SCHEMA_REPEAT}
    assert schema["maxItems"] == 100000  # the client's schema is left as it was


def test_a_minimum_past_the_budget_never_exceeds_a_maximum_kept():
    assert rewrite({"type": "string", "minLength": 5000, "maxLength": 10}) == {"type": "string", "minLength": 10, "maxLength": 10}


def test_bounds_are_found_wherever_a_schema_holds_schemas():
    big = {"type": "string", "maxLength": 5000}
    schema = {"$defs": {"d": big}, "anyOf": [big, {"type": "integer"}], "properties": {"p": {"items": big}}}
    assert rewrite(schema) == {
        "$defs": {"d": {"type": "string"}},
        "anyOf": [{"type": "string"}, {"type": "integer"}],
        "properties": {"p": {"items": {"type": "string"}}},
    }


def test_values_are_data_not_schemas():
    schema = {"const": {"maxLength": 5000}, "default": None, "enum": [{"minItems": 5000}], "examples": [{"maxItems": 5000}]}
    assert rewrite(schema) is schema


def test_a_strict_maximum_is_rewritten_only_where_no_answer_reaches_it():
    assert rewrite({"type": "string", "maxLength": 5000}, reach=5000, strict=True) == {"type": "string"}
    with pytest.raises(UnkeptBound, match="'maxLength' is 5000.*can hold 5001 characters"):
        rewrite({"type": "string", "maxLength": 5000}, reach=5001, strict=True)
    with pytest.raises(UnkeptBound, match="'maxLength' is 5000"):
        rewrite({"type": "string", "maxLength": 5000}, reach=None, strict=True)


def test_a_strict_minimum_past_the_budget_is_refused_whatever_the_reach():
    with pytest.raises(UnkeptBound, match="function 'f' is strict and its 'minItems' is 2000"):
        rewrite({"type": "array", "minItems": 2000}, reach=10**9, strict=True)


def test_keywords_the_converter_does_not_expand_are_left_alone():
    schema = {"type": "object", "maxProperties": 10**6, "minProperties": 10**6, "maxContains": 10**6}
    assert rewrite(schema, strict=True) is schema
