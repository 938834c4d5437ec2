"""GBNF grammars that make the engine's output parse: JSON, a JSON schema, or tool calls.

Runs in the engine process (it uses llama-cpp-python's JSON-schema converter); the request
layer only says what it wants: ``{"kind": "json_object" | "json_schema" | "tool_calls", ...}``.
Tool calls are written in the model's own format (tool_formats/), whose grammar is built of
the rules in schema_grammar.py (which also holds the converter's fixes: JSON strings only).
"""

from __future__ import annotations

from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF

from .schema_bounds import UnkeptBound, within_budget
from .schema_grammar import schema_grammar


class GrammarError(ValueError):
    """The schema cannot be turned into a grammar (400 for the client, naming ``param``
    when it is known here)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.code = param, code


# The grammar llama.cpp compiles for one request: a schema within params.py's budgets makes
# far less; past it, the request is refused before llama.cpp parses anything.
MAX_GRAMMAR_CHARS = 1 << 20


def grammar_for(spec: dict[str, Any] | None, tool_format: Any = None, reach: int | None = None) -> str | None:
    """The grammar of ``spec``; tool calls in ``tool_format``'s syntax (tool_formats/).
    ``reach``: the most characters the answer can hold (schema_bounds.py)."""
    grammar = _grammar_for(_within_budget(spec, reach), tool_format)
    if grammar is not None and len(grammar) > MAX_GRAMMAR_CHARS:
        raise GrammarError(f"its grammar would be {len(grammar)} characters, above the {MAX_GRAMMAR_CHARS} allowed")
    return grammar


def _within_budget(spec: dict[str, Any] | None, reach: int | None) -> dict[str, Any] | None:
    """``spec`` with its schemas' repetitions past the budget rewritten (schema_bounds.py)."""
    if not spec:
        return spec
    try:
        if spec["kind"] == "json_schema":
            schema = within_budget(spec["schema"], reach, spec.get("strict") is True, "the response_format's schema")
            return {**spec, "schema": schema}
        if spec["kind"] == "tool_calls":
            tools = []
            for tool in spec["tools"]:
                function = tool["function"]
                parameters = function.get("parameters")
                try:
                    rewritten = within_budget(parameters, reach, function.get("strict") is True, f"function '{function['name']}'")
                except UnkeptBound as exc:
                    # "tools": a named tool_choice's tool is the only one here, whatever its index.
                    raise GrammarError(str(exc), "tools", "invalid_function_parameters") from None
                tools.append(tool if rewritten is parameters else {**tool, "function": {**function, "parameters": rewritten}})
            return {**spec, "tools": tools}
    except UnkeptBound as exc:
        raise GrammarError(str(exc), "response_format.json_schema.schema", "invalid_json_schema") from None
    return spec


def _grammar_for(spec: dict[str, Any] | None, tool_format: Any) -> str | None:
    if not spec:
        return None
    kind = spec["kind"]
    if kind == "gbnf":  # the client's own grammar (llama.cpp's extension), used as given
        return spec["grammar"]
    try:
        if kind == "json_object":
            return JSON_GBNF
        if kind == "json_schema":
            return schema_grammar(spec["schema"])
        if kind == "tool_calls":
            if tool_format is None:
                from .tool_formats import named

                tool_format = named(None)  # the convention
            return tool_format.grammar(spec["tools"], spec.get("parallel", True))
    except Exception as exc:  # the converter fails in many ways on schemas it cannot express
        raise GrammarError(f"the schema cannot be enforced: {type(exc).__name__}: {exc}"[:300]) from None
    raise GrammarError(f"unknown grammar kind {kind!r}")
