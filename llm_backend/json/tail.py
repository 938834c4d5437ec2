"""A member of a JSON object found from the end of its text, without reading the text into
objects: where an answer writes a short member after its one long value (OpenAI's
embeddings: ``data``, then ``model`` and ``usage``; a chat completion: ``choices``, then
``usage``), reading 50 MB of numbers to find it held the GIL, and the event loop, for a
second.

The member is found by a match over the text's last ``TAIL`` bytes: its key, its value
(a scalar, or an object of scalars and objects of scalars, as a usage is), then only such
members up to the object's closing brace and the end. Its key's quote follows a comma, a
brace or a space, so it is not an escaped quote inside a string; and since nothing after it
opens a value, it belongs to the object the last brace closes (``nested``: or to one that
object holds last, as a Response's ``usage`` in a ``response.completed`` event). A text of
another shape has no such member here: its reader reads it whole, or goes without.
"""

from __future__ import annotations

import functools
import json
import re

TAIL = 64 * 1024

STRING = rb'"(?:[^"\\]++|\\.)*+"'
SCALAR = rb"(?:" + STRING + rb"|[-+.\w]++)"
_FLAT = rb"\{\s*+(?:" + STRING + rb"\s*+:\s*+" + SCALAR + rb"\s*+(?:,\s*+" + STRING + rb"\s*+:\s*+" + SCALAR + rb"\s*+)*+)?\}"
_SHALLOW_VALUE = rb"(?:" + SCALAR + rb"|" + _FLAT + rb")"
_SHALLOW = rb"\{\s*+(?:" + STRING + rb"\s*+:\s*+" + _SHALLOW_VALUE + rb"\s*+(?:,\s*+" + STRING + rb"\s*+:\s*+" + _SHALLOW_VALUE + rb"\s*+)*+)?\}"
_AFTER = rb"\s*+,\s*+" + STRING + rb"\s*+:\s*+(?:" + SCALAR + rb"|" + _SHALLOW + rb")"


@functools.cache
def _last(field: str, nested: bool) -> re.Pattern[bytes]:
    name = re.escape(json.dumps(field).encode())
    closing = rb"(?:" + _AFTER + rb"|\s*+\})*+" if nested else rb"(?:" + _AFTER + rb")*+\s*+\}"
    return re.compile(rb"(?<=[,{\s])" + name + rb"\s*+:\s*+(" + SCALAR + rb"|" + _SHALLOW + rb")" + closing + rb"\s*+\Z")


def last_member(text: bytes, field: str, nested: bool = False) -> re.Match[bytes] | None:
    """``field``'s value (the match's group 1) where it is among the last members of the
    object ``text`` ends with (``nested``: or of the object that one holds last)."""
    return _last(field, nested).search(text, max(len(text) - TAIL, 0))
