"""Calls written one argument at a time between tags, each value raw text: Qwen3-Coder's
``<parameter=city>\\nOslo\\n</parameter>`` and GLM's ``<arg_key>city</arg_key>
<arg_value>Oslo</arg_value>`` (qwen3_coder.py, glm.py). What the two share: the values'
types, a value read as it streams, the arguments' JSON object written around them, and the
grammar of a forced call; the parsers are built on ``XmlCalls``.

A value is typed by its parameter's schema, as llama.cpp types it (``resolves_to_string``,
common/json-schema-to-grammar.cpp; its parsers since the autoparser, March 2026): a parameter
that can be a string takes the text as it is, streamed as a JSON string while it comes; any
other's text is JSON (a number, an object), read once whole, and text that is no JSON after
all is given as a string. A parser given no schemas (names only) reads every value so:
JSON if the whole text is JSON, else a string, llama.cpp's rule before it read schemas
(common/chat-parser-xml-toolcall.cpp, November 2025). The two differ only for a string
parameter whose text looks like JSON (``42``, ``{"a": 1}``): a file's content an agent
writes stays a string only when the schema says so.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from ....json.types import Json
from .base import Arguments, Call, Content, Event, TaggedCalls, until_marker

# A function's or a parameter's name is at most this long: past it without its closing
# bracket, what looked like a call is none.
MAX_NAME = 256


def string_valued(schema: Any, defs: Json, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a value of ``schema`` can be a string (llama.cpp's ``resolves_to_string``):
    its type, a branch of ``anyOf``/``oneOf`` (all of ``allOf``), a string ``const`` or
    ``enum`` value, or a keyword only strings have. ``defs``: the parameters' schema, for
    local ``$ref``s."""
    if not isinstance(schema, dict):
        return False
    if isinstance(ref := schema.get("$ref"), str):
        if ref in seen or not ref.startswith("#/"):
            return False
        target: Any = defs
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return string_valued(target, defs, seen | {ref})
    kind = schema.get("type")
    if kind == "string" or (isinstance(kind, list) and "string" in kind):
        return True
    if any(string_valued(branch, defs, seen) for key in ("anyOf", "oneOf") for branch in schema.get(key) or ()):
        return True
    if schema.get("allOf") and all(string_valued(part, defs, seen) for part in schema["allOf"]):
        return True
    if isinstance(schema.get("const"), str) or any(isinstance(value, str) for value in schema.get("enum") or ()):
        return True
    return any(key in schema for key in ("pattern", "minLength", "maxLength")) or str(schema.get("format", "")).startswith(
        ("date", "time", "uri", "email", "hostname", "ipv4", "ipv6", "uuid")
    )


class ArgumentTypes:
    """Which parameters of the offered functions take strings (None: no schemas given)."""

    def __init__(self, tools: list[Json] | None) -> None:
        self.strings: dict[str, dict[str, bool]] | None = None
        if tools is not None:
            self.strings = {}
            for tool in tools:
                parameters = tool["function"].get("parameters") or {}
                properties = parameters.get("properties") or {}
                self.strings[tool["function"]["name"]] = {
                    key: string_valued(schema, parameters) for key, schema in properties.items()
                }

    def string(self, function: str, key: str) -> bool | None:
        """True for a string parameter, False for another, None where no schema says."""
        if self.strings is None:
            return None
        return self.strings.get(function, {}).get(key)


def as_json(text: str) -> str:
    """A value's whole text as JSON: itself if it is JSON (NaN and Infinity are not), else a string."""
    stripped = text.strip()
    try:
        # Python reads NaN and Infinity; dumping without them refuses them anywhere inside.
        json.dumps(json.loads(stripped), allow_nan=False)
    except ValueError:
        return json.dumps(text, ensure_ascii=False)
    return stripped


class RawValue:
    """One argument's value: raw text up to the first of ``ends``, as JSON text. A string
    (``string`` True) streams as it comes, escaped, less what could still be the start of
    an end; any other value waits for its end (``as_json``)."""

    def __init__(self, string: bool | None, ends: tuple[str, ...]) -> None:
        self.string = bool(string)
        self.ends = ends
        self.text = ""  # a value read whole: its text so far
        self.opened = False

    def take(self, buffer: str) -> tuple[str, str | None, str]:
        """(the value's JSON text made certain, the end found or None, what follows the end,
        or the held tail when none was found)."""
        before, end, rest = until_marker(buffer, self.ends)
        if not self.string:
            self.text += before
            return (as_json(self.text) if end is not None else ""), end, rest
        piece = ("" if self.opened else '"') + json.dumps(before, ensure_ascii=False)[1:-1]
        self.opened = True
        return piece + ('"' if end is not None else ""), end, rest

    def cut(self, tail: str) -> str:
        """The rest of the value's JSON text when the answer ends inside it (``tail``: the
        text held back)."""
        if not self.string:
            return as_json(self.text + tail)
        return ("" if self.opened else '"') + json.dumps(tail, ensure_ascii=False)[1:-1] + '"'


class ObjectText:
    """A call's arguments as the JSON object they stream as: each key as its value starts,
    the closing brace when the call ends."""

    def __init__(self) -> None:
        self.keys = 0

    def key(self, name: str) -> str:
        self.keys += 1
        return ("{" if self.keys == 1 else ", ") + json.dumps(name, ensure_ascii=False) + ": "

    def close(self) -> str:
        return "}" if self.keys else "{}"


class XmlCalls(TaggedCalls):
    """Text, then calls each between ``opening`` and ``closing``: what Qwen3-Coder's and GLM's
    parsers share. A call is read in parts (``part``: its name, its arguments, each key and
    value); the family's ``_inside`` reads each part's markup, the steps here do the rest."""

    def __init__(self, names: set[str], types: ArgumentTypes) -> None:
        super().__init__(names)
        self.types = types
        self.part = "name"
        self.function = ""
        self.arguments = ObjectText()
        self.value: RawValue | None = None

    def finish(self) -> list[Event]:
        if self.state == "content":
            return [Content(self.buffer)]
        if self.state == "inside" and self.part == "name":
            return [] if self.calls else [Content(self.opening + self.buffer)]
        if self.state == "inside":  # cut inside the call: its arguments closed as they stand
            value = self.value.cut(self.buffer) if self.part == "value" and self.value is not None else ""
            return [Arguments(value + self.arguments.close())]
        return []

    def _open(self) -> None:
        self.state, self.part = "inside", "name"

    def _call(self, events: list[Event], name: str, rest: str) -> bool:
        """The call of ``name``, its arguments next (in ``rest``), if it was offered; else
        what looked like a call is none."""
        name = name.strip()
        if name not in self.names:
            self._reject(events, self.opening)
            return True
        self.function = name
        events.append(Call(name))
        self.calls += 1
        self.buffer, self.part, self.arguments = rest, "arguments", ObjectText()
        return True

    def _key(self, events: list[Event], key: str, rest: str, ends: tuple[str, ...], then: str = "value") -> bool:
        """The argument ``key``, its value (up to one of ``ends``) next, in ``rest``."""
        key = key.strip()
        events.append(Arguments(self.arguments.key(key)))
        self.value = RawValue(self.types.string(self.function, key), ends)
        self.buffer, self.part = rest, then
        return True

    def _value(self, events: list[Event]) -> str | None:
        """More of the value being read; the end it found, once it has."""
        assert self.value is not None
        piece, end, self.buffer = self.value.take(self.buffer)
        if piece:
            events.append(Arguments(piece))
        return end

    def _end_call(self, events: list[Event], rest: str) -> bool:
        """The call's arguments are all read: ``rest`` is read for its closing tag."""
        events.append(Arguments(self.arguments.close()))
        self.buffer, self.state = rest, "close"
        return True


# --- the grammar of forced calls (engine process) --------------------------------------------


def text_without(name: str, end: str) -> str:
    """GBNF rules, ``name`` first, of any text that never holds ``end`` (whose first
    character it holds once only: a state per character of ``end`` matched so far)."""
    from ..schema_grammar import literal

    assert end[0] not in end[1:], end
    first = literal(end[0])
    rules = [f"{name} ::= ([^{_class_char(end[0])}] {name} | {first} {name}-1)?"]
    for index in range(1, len(end)):
        others = _class_char(end[0]) + _class_char(end[index])
        step = f" | {literal(end[index])} {name}-{index + 1}" if index + 1 < len(end) else ""
        rules.append(f"{name}-{index} ::= ([^{others}] {name} | {first} {name}-1{step})?")
    return "\n".join(rules)


def _class_char(char: str) -> str:
    """``char`` as it is written in a GBNF character class."""
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", "]": "\\]", "^": "\\x5E", "-": "\\x2D"}.get(char, char)


def call_rules(
    tools: list[Json], head: Callable[[str], str], argument: Callable[[str], str], string_end: str, value_end: str, tail: str
) -> tuple[str, str]:
    """For forced calls: the alternatives, one per function, ``head(name)``, then each
    parameter (the required ones, each optional one optional, in the schema's order) as
    ``argument(key)``, its value and ``value_end`` (GBNF), then ``tail``; and the rules they
    use. A string parameter's value is raw text without ``string_end``; another's its JSON
    schema's (schema_grammar.py's converter, which writes JSON strings only)."""
    from ..schema_grammar import literal, new_converter

    converter = new_converter()
    alternatives = []
    for index, tool in enumerate(tools):
        given = tool["function"].get("parameters") or {"type": "object"}
        # The converter rewrites references in place: a copy, and the types read before.
        strings = {key: string_valued(schema, given) for key, schema in (given.get("properties") or {}).items()}
        parameters = converter.resolve_refs(copy.deepcopy(given), "stdin")
        required = set(parameters.get("required") or ())
        parts = [literal(head(tool["function"]["name"]))]
        for position, (key, schema) in enumerate((parameters.get("properties") or {}).items()):
            value = "raw-text" if strings[key] else converter.visit(schema, f"call-{index}-{position}")
            part = f"{literal(argument(key))} {value} {value_end}"
            parts.append(part if key in required else f"({part})?")
        alternatives.append(" ".join([*parts, literal(tail)]) if tail else " ".join(parts))
    rules = converter.format_grammar() + "\n" + text_without("raw-text", string_end)
    return "(" + " | ".join(alternatives) + ")", rules
