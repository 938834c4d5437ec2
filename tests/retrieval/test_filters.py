"""``filters`` on file attributes: OpenAI's comparison and compound filters."""

from __future__ import annotations

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.retrieval.filters import compile_filter

FILE = {"region": "north", "year": 2021, "score": 4.5, "public": True}


def matches(spec, attributes=FILE) -> bool:
    return compile_filter(spec)(attributes)


@pytest.mark.parametrize(
    "kind, key, value, expected",
    [
        ("eq", "region", "north", True),
        ("eq", "region", "south", False),
        ("ne", "region", "south", True),
        ("gt", "year", 2020, True),
        ("gt", "year", 2021, False),
        ("gte", "year", 2021, True),
        ("lt", "score", 5, True),
        ("lte", "score", 4.4, False),
        ("in", "region", ["south", "north"], True),
        ("nin", "region", ["south", "north"], False),
        ("eq", "public", True, True),
    ],
)
def test_each_comparison_operator(kind, key, value, expected):
    assert matches({"type": kind, "key": key, "value": value}) is expected


def test_a_missing_key_matches_only_negations():
    assert not matches({"type": "eq", "key": "author", "value": "x"})
    assert not matches({"type": "gt", "key": "author", "value": 1})
    assert matches({"type": "ne", "key": "author", "value": "x"})
    assert matches({"type": "nin", "key": "author", "value": ["x"]})


def test_numbers_and_strings_are_not_ordered_against_each_other():
    assert not matches({"type": "gt", "key": "region", "value": 3})
    assert not matches({"type": "lt", "key": "year", "value": "3000"})


def test_a_boolean_attribute_does_not_equal_the_number_one():
    assert not matches({"type": "eq", "key": "public", "value": 1})


def test_and_or_compounds_nest():
    spec = {
        "type": "and",
        "filters": [
            {"type": "gte", "key": "year", "value": 2020},
            {"type": "or", "filters": [{"type": "eq", "key": "region", "value": "south"},
                                       {"type": "eq", "key": "public", "value": True}]},
        ],
    }
    assert matches(spec)
    assert not matches(spec, {**FILE, "public": False})


@pytest.mark.parametrize(
    "spec, param",
    [
        ({"type": "like", "key": "region", "value": "n"}, "filters.type"),
        ({"type": "eq", "value": "n"}, "filters.key"),
        ({"type": "eq", "key": "region"}, "filters.value"),
        ({"type": "in", "key": "region", "value": "north"}, "filters.value"),
        ({"type": "eq", "key": "region", "value": {"nested": 1}}, "filters.value"),
        ({"type": "and", "filters": []}, "filters.filters"),
        ({"type": "or", "filters": [{"type": "eq", "key": "a", "value": 1}, {"type": "gt", "key": "b"}]},
         "filters.filters[1].value"),
        ("region = north", "filters"),
    ],
)
def test_a_malformed_filter_is_a_400_naming_where(spec, param):
    with pytest.raises(OpenAIError) as caught:
        compile_filter(spec)
    assert (caught.value.status, caught.value.param) == (400, param)
