"""How deep a request's JSON may nest: one rule for every way JSON comes in (HTTP bodies in
``http/body.parse_json``, the Responses WebSocket's events, batch input lines).

Python's parser stops at about 1000 levels (a 400 then), but recursive code after it
(validation, unknown-field checks, chat templates, storing) could still run out of stack on
a body just under that (issue #33). 64 levels hold any request OpenAI's document describes,
a tool's JSON schema included.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 64


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests arrays and objects more than ``limit`` levels (no recursion;
    the memory of the containers open on the way down, not of all of them: a body of 2.79
    million objects once queued them all, +200 MB)."""
    path = [iter((value,))]  # an iterator per container open, the outermost first
    while path:
        for item in path[-1]:
            if isinstance(item, (dict, list)):
                if len(path) > limit:
                    return True
                path.append(iter(item.values() if isinstance(item, dict) else item))
                break
        else:
            path.pop()
    return False
