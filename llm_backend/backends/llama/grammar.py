"""GBNF grammars that make the engine's output parse: JSON, a JSON schema, or tool calls.

Runs in the engine process (it uses llama-cpp-python's JSON-schema converter); the request
layer only says what it wants: ``{"kind": "json_object" | "json_schema" | "tool_calls", ...}``.

The converter (llama-cpp-python 0.3.36) lets strings hold raw control characters
(``char ::= [^"\\\\] | ...``, and ``[^\\x0A\\x0D]`` for a pattern's ``.``), which JSON forbids:
at temperature 1 a model writing a poem into a string property puts real newlines in it and
the answer does not parse. Every negated character class in a grammar built here also
excludes ``"``, ``\\`` and U+0000-U+001F (and DEL, as llama.cpp's own JSON grammar does): in
JSON, such classes only ever describe string contents.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, SchemaConverter

from .tools import CLOSE, OPEN

# What a raw (unescaped) character of a JSON string can never be, in GBNF class syntax.
NOT_IN_JSON_STRINGS = ('"', "\\\\", "\\x00-\\x1F", "\\x7F")

# The tokens of a GBNF rule body that can hold other tokens' characters: quoted literals
# and character classes (only negated classes are changed).
_LITERAL_OR_CLASS = re.compile(r'"(?:[^"\\]|\\.)*"|\[(\^?)((?:[^\]\\]|\\.)*)\]')


class GrammarError(ValueError):
    """The schema cannot be turned into a grammar (400 for the client)."""


def json_string_safe(rule: str) -> str:
    """``rule`` with every negated character class also excluding what JSON strings cannot hold raw."""

    def fix(match: re.Match) -> str:
        negated, body = match.group(1, 2)
        if not negated:
            return match.group(0)
        return "[^" + body + "".join(part for part in NOT_IN_JSON_STRINGS if part not in body) + "]"

    return _LITERAL_OR_CLASS.sub(fix, rule)


class _JsonSchemaConverter(SchemaConverter):
    """llama-cpp-python's converter; every rule it adds goes through ``json_string_safe``."""

    def _add_rule(self, name: str, rule: str) -> str:
        return super()._add_rule(name, json_string_safe(rule))


def schema_grammar(schema: Any, prop_order: list[str] | None = None) -> str:
    """The GBNF grammar of JSON documents valid under ``schema`` (as far as GBNF can say)."""
    converter = _JsonSchemaConverter(
        prop_order={name: index for index, name in enumerate(prop_order or [])},
        allow_fetch=False,
        dotall=False,
        raw_pattern=False,
    )
    schema = converter.resolve_refs(schema, "stdin")
    converter.visit(schema, "")
    return converter.format_grammar()


def _rename_root(grammar: str, name: str) -> str:
    lines = grammar.splitlines()
    renamed = [f"{name} ::= {line[len('root ::= '):]}" if line.startswith("root ::= ") else line for line in lines]
    return "\n".join(renamed)


def _literal(text: str) -> str:
    return json.dumps(text)


def tool_calls_grammar(tools: list[dict[str, Any]], parallel: bool) -> str:
    """``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, once or repeated, for
    exactly the given functions and their parameter schemas."""
    alternatives = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool["function"]["name"]},
                "arguments": tool["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    schema = alternatives[0] if len(alternatives) == 1 else {"oneOf": alternatives}
    call = _rename_root(schema_grammar(schema, prop_order=["name", "arguments"]), "call")
    one = f"{_literal(OPEN)} call {_literal(CLOSE)}"
    root = f"root ::= {one} (\"\\n\" {one})*" if parallel else f"root ::= {one}"
    return root + "\n" + call


def grammar_for(spec: dict[str, Any] | None) -> str | None:
    if not spec:
        return None
    kind = spec["kind"]
    try:
        if kind == "json_object":
            return JSON_GBNF
        if kind == "json_schema":
            return schema_grammar(spec["schema"])
        if kind == "tool_calls":
            return tool_calls_grammar(spec["tools"], spec.get("parallel", True))
    except Exception as exc:  # the converter fails in many ways on schemas it cannot express
        raise GrammarError(f"the schema cannot be enforced: {type(exc).__name__}: {exc}"[:300]) from None
    raise GrammarError(f"unknown grammar kind {kind!r}")
