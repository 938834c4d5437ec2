r"""A custom tool's ``regex`` grammar as a JSON-schema ``pattern`` the engine can compile.

The engine turns a ``pattern`` into GBNF with llama.cpp's converter (backends/llama/
schema_grammar.py), which reads a subset of regex syntax and copies escapes through to GBNF, where
``\d``, ``\.`` or ``\-`` do not parse. OpenAI's regex grammars are Rust ``regex`` syntax;
this rewrites the common part of it into what the converter reads (shorthand classes as
classes, escaped punctuation as ``\xHH``, ``(?:`` as a group) and says ``None`` for what it
cannot keep: lookarounds, word boundaries and anchors inside, backreferences, named or
flagged groups, Unicode and POSIX classes, a negated shorthand inside a class, and a raw
quote or backslash inside a class (the input is a JSON string: they would be written raw).
Laziness (``*?``) changes no whole-string match, so it is read as the greedy form.
"""

from __future__ import annotations

import re
import warnings

_SHORTHAND = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\r"}
_NEGATED = {"D": "0-9", "W": "a-zA-Z0-9_", "S": " \\t\\n\\r"}
_CONTROL = {"t", "n", "r"}
# Escapes the converter reads outside a class as the character itself.
_OUTSIDE_AS_IS = set("[]{}()|*+?")
_RUST_ONLY = re.compile(r"\\[pP]")
_REPETITION = re.compile(r"\{[0-9]+(,[0-9]*)?\}")


class Unkept(ValueError):
    """Regex syntax the engine's grammar cannot keep."""


def _hex(char: str) -> str:
    return f"\\x{ord(char):02X}"


def _class(pattern: str, start: int) -> tuple[str, int]:
    """The class opening at ``start`` (``[``), rewritten; the index after it."""
    i, out = start + 1, "["
    if pattern[i : i + 1] == "^":
        out, i = out + "^", i + 1
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        char = pattern[i]
        first = False
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if escaped in _SHORTHAND:
                out += _SHORTHAND[escaped]
            elif escaped in _CONTROL:
                out += "\\" + escaped
            elif escaped in ("\\", '"'):
                raise Unkept("a backslash or a quote in a character class")
            elif escaped.isalnum():
                raise Unkept(f"'\\{escaped}' in a character class")
            else:
                out += _hex(escaped)
            i += 2
            continue
        if char == "[":
            raise Unkept("a nested or POSIX character class")
        if char in ('"', "\\"):
            raise Unkept("a backslash or a quote in a character class")
        out += "\\x5D" if char == "]" else char
        i += 1
    if i >= len(pattern):
        raise Unkept("an unclosed character class")
    return out + "]", i + 1


def portable(definition: str) -> str:
    """``definition`` as an anchored pattern the engine's converter reads alike; ``Unkept``
    when it cannot (``re.error`` when it is no regex at all)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Python's hints about sets Rust reads otherwise
            re.compile(definition)
    except re.error:
        if _RUST_ONLY.search(definition):
            raise Unkept("Unicode classes") from None  # valid in Rust's syntax, not in Python's
        raise
    pattern = definition[1:] if definition.startswith("^") else definition
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1]
            if escaped in _SHORTHAND:
                out += f"[{_SHORTHAND[escaped]}]"
            elif escaped in _NEGATED:
                out += f"[^{_NEGATED[escaped]}]"
            elif escaped in _CONTROL or escaped in _OUTSIDE_AS_IS:
                out += "\\" + escaped
            elif escaped == '"':
                out += '"'  # the converter writes a quote of its literals escaped
            elif escaped.isalnum() or escaped == "\\":
                raise Unkept(f"'\\{escaped}'")
            else:
                out += f"[{_hex(escaped)}]"
            i += 2
        elif char == "[":
            rewritten, i = _class(pattern, i)
            out += rewritten
        elif char == "(":
            if pattern.startswith("(?:", i):
                out, i = out + "(", i + 3
                continue
            if pattern.startswith("(?", i):
                raise Unkept("lookarounds, named groups and flags")
            out, i = out + char, i + 1
        elif char in "^$":
            raise Unkept("an anchor inside the pattern")
        elif char == "{":
            repetition = _REPETITION.match(pattern, i)
            if repetition is None:
                raise Unkept("a brace that is not a repetition")
            out, i = out + repetition.group(0), repetition.end()
        else:
            out, i = out + char, i + 1
    return f"^({out})$"
