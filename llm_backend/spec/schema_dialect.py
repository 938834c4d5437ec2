"""The OpenAI document's JSON Schema as this service's validators read it: 3.0's
``nullable`` in a 3.1 document, discriminated ``oneOf`` as any of its branches, compiled once
per schema (jsonschema-rs, the verdict) and walked in Python (jsonschema, the explanation).

Long values are handled in slices (issue #39): a long array's or object's items are checked
in Rust a slice at a time and the first bad one is the one explained (millions of errors
once, gigabytes), a large body is judged that way too rather than by one Rust call holding
the GIL, and long values are shown short in error messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.validators import extend


# What an error message shows of a long value: jsonschema writes the instance's repr into
# its messages, and an 8 MiB array's took seconds and made a reply of megabytes.
_SHOWN_ITEMS = 8
_SHOWN_CHARS = 100


# A shown list or object of more than _SHOWN_ITEMS keeps the value it shows (``plain``): the
# compiled checks of a long array's items read that, as they refuse a str subclass
# ("Unsupported type": a fuzzed list of long strings was a 500).
class _ShownList(list):
    plain: list

    def __repr__(self) -> str:
        return "[" + ", ".join(repr(item) for item in self[:_SHOWN_ITEMS]) + f", ... ({len(self)} items)]"


class _ShownDict(dict):
    plain: dict

    def __repr__(self) -> str:
        shown = ", ".join(f"{key!r}: {value!r}" for key, value in list(self.items())[:_SHOWN_ITEMS])
        return "{" + shown + f", ... ({len(self)} keys)}}"


class _ShownStr(str):
    def __repr__(self) -> str:
        return repr(str(self[:_SHOWN_CHARS])) + f"... ({len(self)} characters)"


def _shown(value: Any) -> Any:
    """``value`` with its long lists, objects and strings shown short in error messages
    (the same values: subclasses of list, dict and str; the rest not copied)."""
    shown: Any
    if isinstance(value, dict):
        shown = {key: _shown(item) for key, item in value.items()} if any(_changes(item) for item in value.values()) else value
        if len(shown) > _SHOWN_ITEMS:
            shown = _ShownDict(shown)
            shown.plain = value
        return shown
    if isinstance(value, list):
        shown = [_shown(item) for item in value] if any(_changes(item) for item in value) else value
        if len(shown) > _SHOWN_ITEMS:
            shown = _ShownList(shown)
            shown.plain = value
        return shown
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return _ShownStr(value)
    return value


def _plain(value: Any) -> Any:
    """The value a shown list or object shows (the compiled checks read it), else itself."""
    return getattr(value, "plain", value)


def _changes(value: Any) -> bool:
    """Whether ``_shown`` makes something else of ``value``."""
    if isinstance(value, str):
        return len(value) > _SHOWN_CHARS
    if isinstance(value, (dict, list)):
        return len(value) > _SHOWN_ITEMS or any(_changes(item) for item in (value.values() if isinstance(value, dict) else value))
    return False


def _allow_nullable(keyword: str):
    check = Draft202012Validator.VALIDATORS[keyword]

    def nullable_check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        yield from check(validator, value, instance, schema)

    return nullable_check


def _first_error(keyword: str):
    """A keyword that walks an instance's items or properties, stopping at the first error
    (OpenAI reports one): an array of millions of bad items once made millions of errors,
    gigabytes, before one was chosen. A long array's first bad item is found by bisection
    with the compiled schema of its items, a large object's by that schema in Rust, value by
    value (600 000 valid ``attributes`` walked in Python took 40 s): the explanation walks
    one item, not all."""
    check = Draft202012Validator.VALIDATORS[keyword]

    def first(validator, value, instance, schema):
        if keyword == "items" and isinstance(value, dict) and isinstance(instance, list) and len(instance) > _BISECTED:
            start = len(schema.get("prefixItems") or ())
            index = _first_bad_item(value, _plain(instance), start)
            if index is not _UNCHECKED:
                if index is not None:
                    yield from validator.descend(instance[index], value, path=index)
                return
        if keyword == "additionalProperties" and isinstance(value, dict) and isinstance(instance, dict) and len(instance) > _BISECTED:
            valid = _array_check(value)
            if valid is not None and "patternProperties" not in schema:
                known = schema.get("properties") or {}
                for key, item in _plain(instance).items():
                    if key not in known and not valid([item]):
                        yield from validator.descend(instance[key], value, path=key)
                        return
                return
        if keyword == "propertyNames" and isinstance(value, dict) and isinstance(instance, dict) and len(instance) > _BISECTED:
            names = list(instance)
            index = _first_bad_item(value, names, 0)
            if index is not _UNCHECKED:
                if index is not None:
                    yield from validator.descend(names[index], value)
                return
        for error in check(validator, value, instance, schema):
            yield error
            return

    return first


_BISECTED = 64
_CHUNK = 256
# id(items schema) -> (the schema, kept so that its id is not reused; its array's check)
_ITEM_CHECKS: dict[int, tuple[dict, Any]] = {}


_UNCHECKED = -1


def _array_check(items: dict) -> Callable[[list], bool] | None:
    """Whether every item of a list is valid for ``items``: its compiled schema (None: it
    does not compile alone, a reference left in it)."""
    entry = _ITEM_CHECKS.get(id(items))
    if entry is None or entry[0] is not items:
        try:
            check = jsonschema_rs.validator_for(nullable_as_type({"type": "array", "items": items})).is_valid
        except Exception:
            check = None
        entry = _ITEM_CHECKS[id(items)] = (items, check)
    return entry[1]


def _first_bad_item(items: dict, instance: list, start: int) -> int | None:
    """The index of the first item from ``start`` the compiled ``items`` schema refuses
    (None: all pass; ``_UNCHECKED``: the schema does not compile alone): chunk by chunk, then
    by bisection in the chunk, a few Rust calls of at most ``_CHUNK`` items each (a Rust call
    holds the GIL: 150 000 conversation items in one took 0.65 s)."""
    valid = _array_check(items)
    if valid is None:
        return _UNCHECKED
    for low in range(start, len(instance), _CHUNK):
        high = min(low + _CHUNK, len(instance))
        if valid(instance[low:high]):
            continue
        while high - low > 1:
            middle = (low + high) // 2
            if valid(instance[low:middle]):
                low = middle
            else:
                high = middle
        return low
    return None


# The document is 3.1 but still says `nullable: true` (the 3.0 way) in ~110 places; OpenAI
# accepts null there, and so must we.
RequestSchemaValidator = extend(
    Draft202012Validator,
    {
        **{keyword: _allow_nullable(keyword) for keyword in ("type", "enum", "oneOf", "anyOf")},
        **{
            keyword: _first_error(keyword)
            for keyword in ("items", "prefixItems", "additionalProperties", "patternProperties", "propertyNames")
        },
    },
)


def nullable_as_type(node: Any) -> Any:
    """A copy of a schema with 3.0's ``nullable: true`` spelled the 2020-12 way."""
    if isinstance(node, list):
        return [nullable_as_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    # 2019-09's recursive keywords (CompoundFilter: nested filters) are no 2020-12 keywords:
    # the Python validator ignores them, and jsonschema-rs refuses the schema; drop them.
    node = {key: nullable_as_type(value) for key, value in node.items() if key != "$recursiveAnchor"}
    if node.get("$recursiveRef") == "#":
        node.pop("$recursiveRef")
    # A discriminated oneOf is chosen by its discriminator at OpenAI; JSON Schema's oneOf
    # refuses a body two branches accept (a Responses input message with a list of parts is
    # both an EasyInputMessage and an InputMessage), so here any branch may accept it.
    if "oneOf" in node and "discriminator" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        elif isinstance(node.get("type"), list) and "null" not in node["type"]:
            node["type"] = [*node["type"], "null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        if "type" not in node:
            # ``nullable`` beside a oneOf/anyOf alone (chat's ``prediction``): null is one
            # more branch (found by the strict fuzz check: ``"prediction": null`` was a 400).
            for keyword in ("oneOf", "anyOf"):
                if keyword in node:
                    node[keyword] = [*node[keyword], {"type": "null"}]
    return node


# id(schema) -> (schema, fast validator, explaining validator); the schema is kept so
# its id cannot be reused by another object.
_COMPILED: dict[int, tuple[dict, Any, Any, Any]] = {}


def _has_ref(node: Any) -> bool:
    """Whether a ``$ref`` is left in ``node`` (each shared subtree looked at once)."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            if "$ref" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _body_only(schema: dict) -> dict:
    """The schema without the ``components`` Connexion attaches to every operation's body
    schema: its references are resolved in place, so the whole document's components are
    dead weight, and copying and compiling them cost about 1 s per operation on its first
    request (measured: 0.5 s converting, 0.5 s compiling; without them, 8 ms)."""
    body = {key: value for key, value in schema.items() if key != "components"}
    return schema if "components" not in schema or _has_ref(body) else body


def _compiled(schema: dict) -> tuple[Any, Any]:
    entry = _COMPILED.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _COMPILED[id(schema)] = (
            schema,
            jsonschema_rs.validator_for(nullable_as_type(_body_only(schema))),
            RequestSchemaValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER),
            # The compiled schema's verdict, walked in Python with the long arrays and
            # objects checked in Rust a slice at a time (``_first_error``): for large bodies.
            RequestSchemaValidator(schema),
        )
    return entry[1], entry[2]


def _valid_in_slices(schema: dict, body: Any) -> bool:
    """The compiled schema's verdict on a large body, without holding the GIL through it:
    one Rust call over a valid 8 MiB body of conversation items held it 0.39 s, during
    which the event loop could not run. Formats are not asserted, as the compiled schema
    does not assert them (the verdicts agree: tests/unit/test_large_bodies.py)."""
    return next(_COMPILED[id(schema)][3].iter_errors(body), None) is None
