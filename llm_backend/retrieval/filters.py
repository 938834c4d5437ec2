"""``filters`` on a vector store file's ``attributes``: OpenAI's comparison and compound filters.

Comparison: ``{"type": eq|ne|gt|gte|lt|lte|in|nin, "key": str, "value": ...}``; compound:
``{"type": and|or, "filters": [...]}``. Validated once into a predicate (malformed → 400
naming the path), then evaluated per file in Python: a store's files are few next to its
chunks, and attribute values are JSON that each database would query differently.
A missing key matches nothing but ``ne`` and ``nin``; ordering compares numbers with
numbers and strings with strings, anything else matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_DEPTH = 16


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _ordered(left: Any, right: Any) -> bool:
    """Whether the two can be ordered: both numbers (not booleans) or both strings."""
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    numbers = (int, float)
    return (isinstance(left, numbers) and isinstance(right, numbers)) or (isinstance(left, str) and isinstance(right, str))


def _same(left: Any, right: Any) -> bool:
    # True == 1 in Python; an attribute `true` must not equal the number 1.
    return type(left) is type(right) and left == right if isinstance(left, bool) or isinstance(right, bool) else left == right


def _comparison(kind: str, key: str, value: Any) -> Predicate:
    if kind in ("in", "nin"):
        found: Predicate = lambda attributes: key in attributes and any(_same(attributes[key], item) for item in value)
        return found if kind == "in" else (lambda attributes: not found(attributes))
    if kind == "eq":
        return lambda attributes: key in attributes and _same(attributes[key], value)
    if kind == "ne":
        return lambda attributes: not (key in attributes and _same(attributes[key], value))
    test = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[kind]
    return lambda attributes: key in attributes and _ordered(attributes[key], value) and test(attributes[key], value)


def compile_filter(spec: Any, param: str = "filters", depth: int = 0) -> Predicate:
    """A predicate over attributes; raises a 400 ``OpenAIError`` for a malformed filter."""
    if depth > MAX_DEPTH:
        raise bad_request(f"Invalid '{param}': filters nest deeper than {MAX_DEPTH} levels.", param, "invalid_value")
    if not isinstance(spec, dict):
        raise bad_request(f"Invalid '{param}': expected an object.", param, "invalid_type")
    kind = spec.get("type")
    if kind in COMPOUNDS:
        parts = spec.get("filters")
        if not isinstance(parts, list) or not parts:
            raise bad_request(f"Invalid '{param}.filters': expected a non-empty array.", f"{param}.filters", "invalid_value")
        predicates = [compile_filter(part, f"{param}.filters[{index}]", depth + 1) for index, part in enumerate(parts)]
        if kind == "and":
            return lambda attributes: all(predicate(attributes) for predicate in predicates)
        return lambda attributes: any(predicate(attributes) for predicate in predicates)
    if kind not in COMPARISONS:
        expected = ", ".join(repr(name) for name in COMPARISONS + COMPOUNDS)
        raise bad_request(f"Invalid '{param}.type': expected one of {expected}, got {kind!r}.", f"{param}.type", "invalid_value")
    key, value = spec.get("key"), spec.get("value")
    if not isinstance(key, str):  # "" too: an attribute may have an empty name
        raise bad_request(f"Invalid '{param}.key': expected a string.", f"{param}.key", "invalid_value")
    if "value" not in spec:
        raise bad_request(f"Missing required parameter: '{param}.value'.", f"{param}.value", "missing_required_parameter")
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(_scalar(item) for item in value):
            raise bad_request(
                f"Invalid '{param}.value': '{kind}' needs an array of strings, numbers or booleans.",
                f"{param}.value",
                "invalid_value",
            )
    elif not _scalar(value):
        raise bad_request(
            f"Invalid '{param}.value': expected a string, number or boolean.", f"{param}.value", "invalid_value"
        )
    return _comparison(kind, key, value)
