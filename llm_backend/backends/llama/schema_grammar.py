r"""GBNF of a JSON schema, and the rules tool calls are built of (a call as a JSON object, or
each function's arguments): what grammar.py and every tool format (tool_formats/) share.

Runs in the engine process (it uses llama-cpp-python's JSON-schema converter; the tool
formats import it inside the methods that build grammars, so the API process never loads it).
Below grammar.py, which picks the tool format, so neither imports the other in a circle.

The converter (llama-cpp-python 0.3.36) writes JSON strings that JSON forbids, three ways:
- its ``char ::= [^"\\] | ...`` (and ``[^\x0A\x0D]`` for a pattern's ``.``) lets strings hold
  raw control characters: at temperature 1 a model writing a poem into a string property
  puts real newlines in it and the answer does not parse;
- ``const`` / ``enum`` values and property names are written into GBNF literals without
  doubling backslashes, so ``"a\tb"`` comes out with a raw tab, ``"c\\d"`` as ``c``
  backspace ``d``, and a value with a quote does not parse at all;
- a ``pattern``'s literal characters are written raw: ``\n`` or ``"`` in a pattern puts a raw
  newline or a quote into the string.
Here every negated character class also excludes ``"``, ``\`` and U+0000-U+001F (and DEL, as
llama.cpp's own JSON grammar does: in JSON such classes only ever describe string contents),
literals keep their backslashes, and a pattern's literal text is written JSON-escaped.
Left as they are: positive classes in a pattern that name control characters (``[\t ]``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from llama_cpp.llama_grammar import SchemaConverter

# What a raw (unescaped) character of a JSON string can never be, in GBNF class syntax.
NOT_IN_JSON_STRINGS = ('"', "\\\\", "\\x00-\\x1F", "\\x7F")

# The tokens of a GBNF rule body that can hold other tokens' characters: quoted literals
# and character classes (only negated classes are changed).
_LITERAL_OR_CLASS = re.compile(r'"(?:[^"\\]|\\.)*"|\[(\^?)((?:[^\]\\]|\\.)*)\]')


def json_string_safe(rule: str) -> str:
    """``rule`` with every negated character class also excluding what JSON strings cannot hold raw."""

    def fix(match: re.Match) -> str:
        negated, body = match.group(1, 2)
        if not negated:
            return match.group(0)
        return "[^" + body + "".join(part for part in NOT_IN_JSON_STRINGS if part not in body) + "]"

    return _LITERAL_OR_CLASS.sub(fix, rule)


_GBNF_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]"}
_GBNF_LITERAL_CHAR = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)|(.)", re.DOTALL)
_PATTERN_QUOTES = ('"\\"" ', ' "\\"" space')  # how the converter wraps a pattern into a string


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def _json_escaped_literal(literal: re.Match) -> str:
    """A quoted GBNF literal of a pattern, made to write its text as JSON string content."""
    text = []
    for escape, char in _GBNF_LITERAL_CHAR.findall(literal.group(0)[1:-1]):
        if not escape:
            text.append(char)
        elif escape in _GBNF_ESCAPES:
            text.append(_GBNF_ESCAPES[escape])
        elif escape[0] in "xuU" and len(escape) > 1:
            text.append(chr(int(escape[1:], 16)))
        else:
            return literal.group(0)  # a regex escape GBNF does not know (\d): llama.cpp refuses it
    return _gbnf_literal(json.dumps("".join(text), ensure_ascii=False)[1:-1])


def _json_escaped_pattern(rule: str) -> str:
    head, tail = _PATTERN_QUOTES
    wrapped = rule.startswith(head) and rule.endswith(tail)
    body = rule[len(head) : -len(tail)] if wrapped else rule
    body = _LITERAL_OR_CLASS.sub(lambda m: _json_escaped_literal(m) if m.group(0)[0] == '"' else m.group(0), body)
    return head + body + tail if wrapped else body


class _JsonSchemaConverter(SchemaConverter):
    """llama-cpp-python's converter, writing only JSON strings (see the module docstring)."""

    _in_pattern = False

    def _format_literal(self, literal: str) -> str:
        # Called with JSON text (json.dumps of a const, an enum value, a property name).
        return _gbnf_literal(literal)

    def _visit_pattern(self, pattern: str, name: str) -> str:
        self._in_pattern = True
        try:
            return super()._visit_pattern(pattern, name)
        finally:
            self._in_pattern = False

    def _add_rule(self, name: str, rule: str) -> str:
        if self._in_pattern:
            rule = _json_escaped_pattern(rule)
        return super()._add_rule(name, json_string_safe(rule))


def new_converter(prop_order: list[str] | None = None) -> _JsonSchemaConverter:
    """A converter as every grammar here is built: references within the schema only, no
    fetching, patterns as JSON strings; ``prop_order``: the properties written first."""
    return _JsonSchemaConverter(
        prop_order={name: index for index, name in enumerate(prop_order or [])},
        allow_fetch=False,
        dotall=False,
        raw_pattern=False,
    )


def schema_grammar(schema: Any, prop_order: list[str] | None = None) -> str:
    """The GBNF grammar of JSON documents valid under ``schema`` (as far as GBNF can say)."""
    converter = new_converter(prop_order)
    schema = converter.resolve_refs(schema, "stdin")
    converter.visit(schema, "")
    return converter.format_grammar()


def _rename_root(grammar: str, name: str) -> str:
    lines = grammar.splitlines()
    renamed = [f"{name} ::= {line[len('root ::= '):]}" if line.startswith("root ::= ") else line for line in lines]
    return "\n".join(renamed)


def literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return json.dumps(text)


def call_rules(tools: list[dict[str, Any]], arguments_key: str) -> str:
    """Rules whose ``call`` is ``{"name": <one of tools>, "<arguments_key>": <its arguments>}``,
    name first, for exactly the given functions and their parameter schemas."""
    alternatives = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool["function"]["name"]},
                arguments_key: tool["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", arguments_key],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    schema = alternatives[0] if len(alternatives) == 1 else {"oneOf": alternatives}
    return _rename_root(schema_grammar(schema, prop_order=["name", arguments_key]), "call")


def named_arguments(tools: list[dict[str, Any]], head: Callable[[str], str]) -> tuple[str, str]:
    """For formats that write a call's name outside its JSON: the alternatives ``head(name)``
    then that function's arguments (its parameter schema), one per function, and the rules
    they use."""
    converter = new_converter()
    alternatives = []
    for index, tool in enumerate(tools):
        schema = converter.resolve_refs(tool["function"].get("parameters") or {"type": "object"}, "stdin")
        rule = converter.visit(schema, f"arguments-{index}")
        alternatives.append(f"{literal(head(tool['function']['name']))} {rule}")
    return "(" + " | ".join(alternatives) + ")", converter.format_grammar()
