"""Where a stored item loses its nulls (``serving/responses/items._without_nulls``): only its
own members and its ``output`` parts', not deeper, where the client's own values lie. That is
enough only while every null a request's item may hold and its resource may not is there:
read here from the OpenAI document, for every kind of item the service stores."""

from __future__ import annotations

from typing import Any

from llm_backend.serving.responses import items
from tests.support.document import openai_document

DOCUMENT = openai_document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def _resolved(schema: Any) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema if isinstance(schema, dict) else {}


def _admits_null(schema: Any) -> bool:
    schema = _resolved(schema)
    kinds = schema.get("type")
    if schema.get("nullable") or kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(_admits_null(branch) for key in ("anyOf", "oneOf") for branch in schema.get(key, ()))


def _nullable_paths(schema: Any, path: tuple = (), depth: int = 0) -> set[tuple]:
    """Every member path (``*``: any list element) where ``schema`` admits null."""
    schema, found = _resolved(schema), set()
    if depth > 12:
        return found
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, ()):
            found |= _nullable_paths(branch, path, depth + 1)
    for name, member in (schema.get("properties") or {}).items():
        if _admits_null(member):
            found.add((*path, name))
        found |= _nullable_paths(member, (*path, name), depth + 1)
    if isinstance(schema.get("items"), dict):
        found |= _nullable_paths(schema["items"], (*path, "*"), depth + 1)
    return found


def _by_kind(schema: Any, depth: int = 0) -> dict[str, set[tuple]]:
    """The nullable paths of each branch of a union of items, by its ``type``."""
    schema, kinds = _resolved(schema), {}
    branches = schema.get("oneOf") or schema.get("anyOf")
    if branches and depth < 6:
        for branch in branches:
            for kind, paths in _by_kind(branch, depth + 1).items():
                kinds[kind] = kinds.get(kind, set()) | paths
        return kinds
    parts = [schema, *map(_resolved, schema.get("allOf", ()))]  # a resource: the item allOf its id
    marker = _resolved(next((part["properties"]["type"] for part in parts if "type" in part.get("properties", {})), {}))
    kind = (marker.get("enum") or [marker.get("const")])[0]
    return {kind: _nullable_paths(schema)} if kind else {}


def test_every_null_a_request_may_send_and_a_listed_item_may_not_hold_is_where_it_is_left_out():
    requested = _by_kind(SCHEMAS["InputItem"])
    listed = _by_kind(SCHEMAS["ConversationItemList"]["properties"]["data"]["items"])
    stored_kinds = [kind for kind in items._CONVERSATIONAL if kind != "message"]  # a message is rebuilt whole
    assert set(stored_kinds) <= set(requested) and set(stored_kinds) <= set(listed)
    for kind in stored_kinds:
        for path in requested[kind] - listed[kind]:
            assert len(path) == 1 or (len(path) == 3 and path[:2] == ("output", "*")), (kind, path)


def test_a_stored_item_keeps_what_lies_below_its_members_and_parts_as_sent():
    call = {"type": "mcp_call", "server_label": "s", "name": "t", "arguments": "{}", "output": None,
            "error": {"type": "mcp_tool_execution_error", "content": None}}
    output = {"type": "function_call_output", "call_id": "c", "status": None,
              "output": [{"type": "input_file", "file_id": None, "file_data": "", "detail": {"kept": None}}]}
    [stored_call, stored_output] = items.normalize([call, output])
    assert stored_call["error"] == call["error"] and "output" not in stored_call
    assert stored_output["output"] == [{"type": "input_file", "file_data": "", "detail": {"kept": None}}]
    assert stored_output["status"] == "completed"
