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
    """Whether ``value`` nests arrays and objects more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False
