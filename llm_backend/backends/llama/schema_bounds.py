"""Length and count keywords past the grammar's budget, made something a grammar can hold.

llama.cpp's schema converter writes a repetition out in full: ``{"minItems": 100000}`` is
100000 copies of the item's rule, ``{"maxLength": 524288}`` 524288 nested optional
characters. A grammar's size, and the time llama.cpp takes to compile it, must follow a
budget, never what a schema's numbers expand to. Yet tools that take a file or a script carry
such numbers (Claude Code's ``Workflow``: a string of ``maxLength: 524288``), and OpenAI
serves them (it compiles no non-strict schema). So before the converter sees a schema, each
``minItems``/``maxItems``/``minLength``/``maxLength`` past ``MAX_SCHEMA_REPEAT`` (the only
ones it expands; it ignores ``*Properties`` and ``*Contains``) is rewritten:

- a **maximum** becomes unbounded repetition. When it is at least ``reach``, the most
  characters the answer can hold (its token budget times the vocabulary's longest token, in
  bytes), no answer can break it: a string's length and an array's items each take at least
  one character of the answer. The grammar then says exactly what the schema says, strict or
  not (the 524288 above, on a context of thousands of tokens).
- a **minimum** is a floor: unbounded repetition cannot keep it. The grammar asks for
  ``MAX_SCHEMA_REPEAT`` (as many copies as a grammar within the budget holds); the rest
  is the model's.

A **strict** schema (a function's ``strict: true``, a ``json_schema`` format's) promises an
answer valid under it: a rewrite an answer could break (a minimum, a maximum below ``reach``)
is refused there, naming the keyword, rather than served with a promise unkept. A non-strict
one is served as OpenAI serves it, the arguments the model's; the grammar still enforces all
else it can and every bound within the budget.
"""

from __future__ import annotations

from typing import Any

# Repetitions a grammar writes out (issue #33): past these, the rewrite above.
MAX_SCHEMA_REPEAT = 1000
MAXIMA = ("maxItems", "maxLength")
MINIMA = ("minItems", "minLength")
# Values, not schemas: a const's {"maxLength": 5000} is data and stays as it is.
DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


class UnkeptBound(ValueError):
    """A strict schema's bound the grammar cannot keep within its budget."""


def _count(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def within_budget(schema: Any, reach: int | None, strict: bool, what: str) -> Any:
    """``schema`` with its repetitions past the budget rewritten (see the module docstring);
    ``schema`` itself when none is. ``reach``: the most characters the answer can hold (None:
    unknown, no maximum is then exact). Raises UnkeptBound for a strict schema whose rewrite
    an answer could break; ``what`` names the schema in its message."""

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            rewritten = [rewrite(item) for item in node]
            return node if all(new is old for new, old in zip(rewritten, node)) else rewritten
        if not isinstance(node, dict):
            return node
        changed: dict[str, Any] = {}
        dropped = set()
        for keyword, value in node.items():
            if keyword in DATA_KEYWORDS:
                continue
            if isinstance(value, (dict, list)):
                new = rewrite(value)
                if new is not value:
                    changed[keyword] = new
            elif _count(value) and value > MAX_SCHEMA_REPEAT and keyword in MAXIMA + MINIMA:
                exact = keyword in MAXIMA and reach is not None and value >= reach
                if strict and not exact:
                    raise UnkeptBound(_unkept(what, keyword, value, reach))
                if keyword in MAXIMA:
                    dropped.add(keyword)
                else:
                    changed[keyword] = MAX_SCHEMA_REPEAT
        if not changed and not dropped:
            return node
        new_node = {key: value for key, value in {**node, **changed}.items() if key not in dropped}
        # A minimum above a maximum kept within the budget: the converter's floor is the maximum.
        for low, high in (("minItems", "maxItems"), ("minLength", "maxLength")):
            if _count(new_node.get(low)) and _count(new_node.get(high)) and new_node[low] > new_node[high]:
                new_node[low] = new_node[high]
        return new_node

    return rewrite(schema)


def _unkept(what: str, keyword: str, value: float, reach: int | None) -> str:
    if keyword in MINIMA:
        why = f"a grammar keeps a minimum only by writing it out, and writes at most {MAX_SCHEMA_REPEAT}"
    elif reach is None:
        why = f"above the {MAX_SCHEMA_REPEAT} a grammar repeats"
    else:
        why = f"above the {MAX_SCHEMA_REPEAT} a grammar repeats, and this request's answer can hold {reach} characters"
    return (
        f"{what} is strict and its '{keyword}' is {value:g}: {why}, so a strict answer could not be guaranteed "
        f"valid. Set 'strict' to false to have it served (the bound then the model's to keep), keep it within "
        f"{MAX_SCHEMA_REPEAT}, or (a maximum) lower max_tokens so that no answer reaches it"
    )


def longest_token_bytes(vocab: Any, n_vocab: int) -> int:
    """The most bytes one token of ``vocab`` (a llama.cpp vocabulary) stands for, special
    tokens shown: what one generated token can add to an answer, at most."""
    import ctypes

    import llama_cpp

    buffer = ctypes.create_string_buffer(256)
    longest = 1
    for token in range(n_vocab):
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, True)
        longest = max(longest, abs(n))  # negative: the piece needs -n bytes
    return longest
