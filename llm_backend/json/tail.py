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

``Kept``: an answer kept as it passes to read one of its members at its end, whole while
short, else only its last bytes.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from ..errors import OpenAIError
from .text import LARGE_BODY, loads

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


def last_member(text: bytes | bytearray, field: str, nested: bool = False) -> re.Match[bytes] | None:
    """``field``'s value (the match's group 1) where it is among the last members of the
    object ``text`` ends with (``nested``: or of the object that one holds last)."""
    return _last(field, nested).search(text, max(len(text) - TAIL, 0))


def last_value(text: bytes | bytearray, field: str, nested: bool = False) -> Any:
    """``last_member``'s value, read (None: none there)."""
    found = last_member(text, field, nested)
    try:
        return None if found is None else json.loads(found.group(1))
    except ValueError:
        return None


class Kept:
    """A JSON answer as it passes, kept to read a member of its object once it has passed:
    whole while it is short (``LARGE_BODY + TAIL``), else only its last bytes (``cut``: cut
    to ``TAIL`` each time it grows past that), the member then found from the end
    (``last_member``). A piece costs its own bytes, whatever came before: the readers of an
    answer as it passes run on the event loop (a push parser there took 6 s of it for a 48
    MiB answer in 64 KiB pieces, each piece longer than the last)."""

    __slots__ = ("body", "cut")

    def __init__(self) -> None:
        self.body = bytearray()
        self.cut = False

    def extend(self, piece: bytes) -> None:
        self.body.extend(piece)
        if len(self.body) > LARGE_BODY + TAIL:
            del self.body[: len(self.body) - TAIL]
            self.cut = True

    def member(self, field: str) -> Any:
        """``field`` of the answer's object: None where it has none (when cut: none among its
        last members), or the answer does not read (``loads``: bounded in depth too, where
        ``json.loads`` raised ``RecursionError`` on an upstream's 100,000 brackets)."""
        if self.cut:
            return last_value(self.body, field)
        try:
            answer = loads(bytes(self.body), unique_keys=False)
        except (ValueError, OpenAIError):
            return None
        return answer.get(field) if isinstance(answer, dict) else None
