"""What an upstream's answer shows a tenant (``ownership.py``'s first rule): every object in it
(a JSON object with ``id`` and ``object``, at any depth) and every id its objects name
(``*_id``, ``*_file``, ``*_ids``, ``*_files``, ``fine_tuned_model(_checkpoint)``), each with
its kind; and which operations of the document can answer any (``objectless_operations``).

An answer is read into objects and walked (``claims``) while it holds at most the service's
JSON reader's 1,000,000 values. A longer one is walked as its parser's events come
(``claims_of_text``): its memory is its depth's and its ids', not its values'. A Response of
6,000 tokens with 20 top log probabilities each holds 1.5 million (10 MB, 0.3 s to read
whole, 60 MB of objects): the guard refused it (502) before. Both readings apply one
rule to each object (``_own``), in the same order: an object's own claims, then those of
what it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ijson

from ..json.feeding import basic_events

NAMING_FIELDS = ("fine_tuned_model", "fine_tuned_model_checkpoint")
NAMING_SUFFIXES = ("_id", "_file")
LIST_SUFFIXES = ("_ids", "_files")
# The most values an answer is walked in events for: its CPU is its events' (0.6 s a
# million here: a 20 MB Response of 3.4 million in 1.9 CPU-seconds, 0.75 read whole), and an
# upstream's answer is bounded by bytes only (64 MiB: 30 million).
MAX_STREAMED_VALUES = 8_000_000


def _kind(field: str) -> str:
    """The kind of object a naming field refers to: ``output_file_id`` -> file."""
    if field in NAMING_FIELDS:
        return "model"
    name = field.removesuffix("s").removesuffix("_id").removesuffix("_file")
    return "file" if field.endswith(("_file", "_files", "file_id", "file_ids")) else name


def _names(field: str) -> bool:
    return field in NAMING_FIELDS or field.endswith(NAMING_SUFFIXES)


def _own(members: Mapping[str, Any], found: dict[str, str], objects: bool) -> None:
    """One object's claims (not those of what it holds) added to ``found``."""
    kind = members.get("object")
    if not isinstance(kind, str) or kind == "list":
        return
    if objects and isinstance(members.get("id"), str):
        found.setdefault(members["id"], kind)
    for field, named in members.items():
        if isinstance(named, str) and _names(field):
            found.setdefault(named, _kind(field))
        elif isinstance(named, list) and field.endswith(LIST_SUFFIXES):
            for item in named:
                if isinstance(item, str):
                    found.setdefault(item, _kind(field))


def claims(value: Any, found: dict[str, str], objects: bool = True) -> dict[str, str]:
    """The ids ``value`` (an answer) shows, each with its kind, added to ``found``: its
    objects' own ids (unless not ``objects``) and the ids their naming fields hold."""
    if isinstance(value, list):
        for item in value:
            claims(item, found, objects)
    elif isinstance(value, dict):
        _own(value, found, objects)
        for named in value.values():
            if isinstance(named, (dict, list)):
                claims(named, found, objects)
    return found


class _Open:
    """An object or array being read: the members ``_own`` reads (an object's), the strings
    of a list a naming field holds, and what the values inside it show, in order: an
    object's by the key that holds each (a key twice: its last value counts, where its first
    one stood, as in ``json.loads``' dict)."""

    __slots__ = ("members", "key", "strings", "inner")

    def __init__(self, members: dict[str, Any] | None, strings: list[str] | None) -> None:
        self.members, self.key, self.strings = members, "", strings
        self.inner: dict[str, dict[str, str]] = {}  # an array's under the key ""


def claims_of_text(text: bytes, objects: bool = True) -> dict[str, str]:
    """``claims`` of the JSON ``text``, read as its parser's events come (``ValueError``:
    not JSON). Only what the rule reads is kept: each open object's ``object``, ``id`` and
    naming fields, and the ids found inside it."""
    stack: list[_Open] = []
    found: dict[str, str] = {}
    try:
        for event, value in basic_events(text, use_float=True):
            top = stack[-1] if stack else None
            if top is None:
                if event in ("start_map", "start_array"):
                    stack.append(_Open({} if event == "start_map" else None, None))
            elif event == "map_key":
                top.key = value
            elif event in ("start_map", "start_array"):
                listed = top.members is not None and event == "start_array" and top.key.endswith(LIST_SUFFIXES)
                stack.append(_Open({} if event == "start_map" else None, [] if listed else None))
            elif event in ("end_map", "end_array"):
                _close(stack, found, objects)
            elif top.members is not None:  # a scalar member
                if top.key in top.inner:
                    top.inner[top.key] = {}  # a value it held before is replaced: nothing of it shows
                if _read(top.key, top.members):
                    top.members[top.key] = value
            elif top.strings is not None and isinstance(value, str):
                top.strings.append(value)
    except ijson.JSONError as exc:
        raise ValueError(str(exc)) from None
    return found


def _read(key: str, members: dict[str, Any]) -> bool:
    """Whether ``_own`` reads the member ``key`` (or it was kept already: its last value counts)."""
    return key in ("object", "id") or _names(key) or key.endswith(LIST_SUFFIXES) or key in members


def _close(stack: list[_Open], found: dict[str, str], objects: bool) -> None:
    """The object or array on top of ``stack`` ends: what it showed goes to what holds it."""
    done = stack.pop()
    shown: dict[str, str] = {}
    if done.members is not None:
        _own(done.members, shown, objects)
    for inner in done.inner.values():
        for object_id, kind in inner.items():
            shown.setdefault(object_id, kind)
    if not stack:
        found.update(shown)
        return
    holder = stack[-1]
    if holder.members is None:  # an array's items, in order
        into = holder.inner.setdefault("", {})
        for object_id, kind in shown.items():
            into.setdefault(object_id, kind)
        return
    holder.inner[holder.key] = shown
    if _read(holder.key, holder.members):
        holder.members[holder.key] = done.strings  # a naming list's strings; else None: no name


def objectless_operations(document: dict) -> frozenset[str]:
    """The operations of ``document`` (OpenAI's, as written) whose successful answers can
    hold no object ``claims`` would record (a schema with ``object`` and ``id`` or a naming
    field): their answers are passed on unread (an images answer: ten base64 images, and
    nothing to claim). An upstream that answers beside its document is not trusted:
    an id it shows there is recorded for no one, and so refused to everyone."""
    schemas = document.get("components", {}).get("schemas", {})
    return frozenset(
        operation["operationId"]
        for item in document.get("paths", {}).values()
        # (A DELETE's answer is read: its ``deleted`` is what forgets the object.)
        for method, operation in item.items() if method in ("get", "post", "put", "patch")
        if not any(
            _holds_objects(media.get("schema"), schemas, set())
            for status, answer in operation.get("responses", {}).items() if str(status).startswith("2")
            for media in answer.get("content", {}).values()
        )
    )


def _holds_objects(schema: Any, schemas: dict, seen: set[str]) -> bool:
    if not isinstance(schema, dict):
        return False
    if isinstance(ref := schema.get("$ref"), str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return False
        seen.add(name)
        return _holds_objects(schemas.get(name), schemas, seen)
    properties = schema.get("properties") or {}
    named = any(field == "id" or _names(field) or field.endswith(LIST_SUFFIXES) for field in properties)
    if "object" in properties and named:
        return True
    inner = [*properties.values(), schema.get("items"), schema.get("additionalProperties")]
    inner += [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]
    return any(_holds_objects(part, schemas, seen) for part in inner)
