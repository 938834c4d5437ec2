"""GBNF grammars that make the engine's output parse: JSON, a JSON schema, or tool calls.

Runs in the engine process (it uses llama-cpp-python's JSON-schema converter); the request
layer only says what it wants: ``{"kind": "json_object" | "json_schema" | "tool_calls", ...}``.
"""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from .tools import CLOSE, OPEN


class GrammarError(ValueError):
    """The schema cannot be turned into a grammar (400 for the client)."""


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
    call = _rename_root(json_schema_to_gbnf(json.dumps(schema), prop_order=["name", "arguments"]), "call")
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
            return json_schema_to_gbnf(json.dumps(spec["schema"]))
        if kind == "tool_calls":
            return tool_calls_grammar(spec["tools"], spec.get("parallel", True))
    except Exception as exc:  # the converter fails in many ways on schemas it cannot express
        raise GrammarError(f"the schema cannot be enforced: {type(exc).__name__}: {exc}"[:300]) from None
    raise GrammarError(f"unknown grammar kind {kind!r}")
