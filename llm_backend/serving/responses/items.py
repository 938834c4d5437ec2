"""Input items of the Responses API: normalized (ids, typed content parts) as they are
stored and listed, and turned into chat messages for the backend.

The spec has validated each item's shape; what is refused here is what a local model cannot
take (audio, files; images where it has no projector) or what needs OpenAI's cloud to mean
anything. An ``input_image`` (issue #60) is kept as OpenAI stores it (``image_url`` or
``file_id``, ``detail``), and becomes a chat ``image_url`` part (``input_images.py`` reads a
``file_id`` first), checked by the backend as chat's images are.
"""

from __future__ import annotations

import uuid
from typing import Any

from ...errors import bad_request
from ...json.types import Json


# Item types whose meaning is a text chat: they become chat messages.
_CONVERSATIONAL = (
    "message", "function_call", "function_call_output", "reasoning", "compaction", "file_search_call",
    "mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response",
    # Client-executed tools' calls and outputs, replayed by client_tools.py.
    "custom_tool_call", "custom_tool_call_output", "local_shell_call", "local_shell_call_output",
    "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output",
)
_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "compaction": "cmp",
    "file_search_call": "fs",  # replayed by file_search.py
    # Replayed by serving/mcp/calls.py.
    "mcp_list_tools": "mcpl",
    "mcp_call": "mcp",
    "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "local_shell_call": "lsh",
    "local_shell_call_output": "lsho",
    "shell_call": "sh",
    "shell_call_output": "sho",
    "apply_patch_call": "apc",
    "apply_patch_call_output": "apco",
}
# What turning an item into a chat message needs (the spec's branches do not all require it).
_REQUIRED = {
    "function_call": ("call_id", "name"),
    "function_call_output": ("call_id",),
    "compaction": ("encrypted_content",),
    "mcp_list_tools": ("server_label",),
    "mcp_call": ("server_label", "name"),
    "mcp_approval_request": ("id", "server_label", "name", "arguments"),
    "mcp_approval_response": ("approval_request_id",),
    "custom_tool_call": ("call_id", "name", "input"),
    "custom_tool_call_output": ("call_id",),
    "local_shell_call": ("call_id",),
    "local_shell_call_output": ("call_id",),
    "shell_call": ("call_id",),
    "shell_call_output": ("call_id",),
    "apply_patch_call": ("call_id",),
    "apply_patch_call_output": ("call_id",),
}
_TEXT_PARTS = ("input_text", "output_text", "text", "refusal")
# Items whose resource always has a status (the document's, when it lists them).
_WITH_STATUS = (
    "function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output", "local_shell_call",
    "shell_call", "shell_call_output",
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _image(part: Json, role: str, param: str) -> Json:
    """An ``input_image`` as stored: its ``image_url`` (a URL or a data URL) or ``file_id``."""
    if role == "assistant":
        raise bad_request(f"'{param}': an assistant message cannot hold 'input_image' content.", param, "invalid_value")
    given = {name: part[name] for name in ("image_url", "file_id") if part.get(name) is not None}
    if not given:
        raise bad_request(f"'{param}': an 'input_image' needs an 'image_url' or a 'file_id'.", param, "missing_required_parameter")
    for name, value in given.items():
        if not isinstance(value, str) or not value:
            raise bad_request(f"'{param}.{name}': expected a non-empty string.", f"{param}.{name}", "invalid_type")
    return {"type": "input_image", **given, "detail": part.get("detail") or "auto"}


def _part(part: Any, role: str, param: str, images: bool = False) -> Json:
    kind = part.get("type")
    if kind == "input_image" and images:
        return _image(part, role, param)
    if kind in ("input_image", "input_file", "input_audio"):
        raise bad_request(
            f"'{param}': '{kind}' content is not supported by local models (they read text only).",
            param,
            "unsupported_parameter",
        )
    if kind not in _TEXT_PARTS:
        raise bad_request(f"'{param}': unsupported content type '{kind}'.", param, "invalid_value")
    if kind == "refusal":
        return {"type": "refusal", "refusal": part.get("refusal", "")}
    if role == "assistant":
        # OpenAI's output text always carries its annotations and logprobs (both required).
        return {"type": "output_text", "text": part.get("text", ""), "annotations": part.get("annotations") or [], "logprobs": part.get("logprobs") or []}
    return {"type": "input_text", "text": part.get("text", "")}


def _message(item: Json, param: str, images: bool = False) -> Json:
    role = item.get("role", "user")
    content = item.get("content")
    if isinstance(content, str):
        content = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
    parts = [_part(part, role, f"{param}.content[{index}]", images) for index, part in enumerate(content or [])]
    return {
        "id": item.get("id") or new_id("msg"),
        "type": "message",
        "status": item.get("status") or "completed",
        "role": role,
        "content": parts,
    }


def _without_nulls(item: Json) -> Json:
    """The item's null members left out, and those of its ``output`` parts: where a request's
    item may be null and its resource may not (a call output's ``status``, ``id``, a part's
    ``file_id``: tests/unit/test_stored_items.py reads them from the document). Not deeper:
    below lies what the client owns and the resource takes as sent (an MCP error's
    ``content``, required and any value, null too; a listed tool's ``input_schema``)."""
    return {
        key: [_part_without_nulls(part) for part in value] if key == "output" and isinstance(value, list) else value
        for key, value in item.items()
        if value is not None
    }


def _part_without_nulls(part: Any) -> Any:
    return {key: value for key, value in part.items() if value is not None} if isinstance(part, dict) else part


def _stored(item: Json, kind: str) -> Json:
    """An item as the API returns it: the null fields a request may send left out, and the
    status OpenAI's call and call-output resources always have (found by the fuzzer: a
    stored ``status: null`` or ``file_id: null`` made the item lists invalid)."""
    stored = {**_without_nulls(item), "id": item.get("id") or new_id(_PREFIX[kind])}
    if kind in _WITH_STATUS:
        stored.setdefault("status", "completed")
    if kind == "shell_call":
        # Required by the document's resource, nullable (and left out of a request's item).
        stored.setdefault("environment", None)
        stored["action"] = {"timeout_ms": None, "max_output_length": None, **(stored.get("action") or {})}
    if kind == "shell_call_output":
        stored.setdefault("max_output_length", None)
    if kind == "mcp_approval_response":
        # The document's resource requires `request_id` and never defines it: kept as sent,
        # null when not (the fuzzer's long run found listed items without it invalid).
        stored.setdefault("request_id", None)
    if isinstance(stored.get("output"), list):
        # An image part's `detail` is optional in a request (OpenAI's default: auto) and
        # always there in the stored item.
        stored["output"] = [
            {**part, "detail": part.get("detail") or "auto"} if isinstance(part, dict) and part.get("type") == "input_image" else part
            for part in stored["output"]
        ]
    return stored


def normalize(input_value: Any, param: str = "input", images: bool = False) -> list[Json]:
    """The request's ``input`` as stored items, each with an id (kept when the client gave one);
    ``images``: its model reads them (else an ``input_image`` is refused, naming it)."""
    if input_value is None:
        return []
    if isinstance(input_value, str):
        return [_message({"role": "user", "content": input_value}, param)]
    items = []
    for index, item in enumerate(input_value):
        where = f"{param}[{index}]"
        if not isinstance(item, dict):
            raise bad_request(f"'{where}': expected an object.", where, "invalid_value")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind is None:
            raise bad_request(f"'{where}': an item needs a 'type' (or a 'role', for a message).", where, "invalid_value")
        if kind == "message":
            items.append(_message(item, where, images))
        elif kind in _CONVERSATIONAL:
            for field in _REQUIRED.get(kind, ()):
                if not isinstance(item.get(field), str):
                    raise bad_request(f"Missing required parameter: '{where}.{field}'.", f"{where}.{field}", "missing_required_parameter")
            items.append(_stored(item, kind))
        elif kind == "item_reference":
            raise bad_request(
                f"'{where}': item references are not supported here; send the item itself, or use "
                "'previous_response_id' or 'conversation'.",
                where,
                "unsupported_parameter",
            )
        else:
            raise bad_request(
                f"'{where}': items of type '{kind}' are not supported by local models.",
                f"{where}.type",
                "unsupported_parameter",
            )
    return items


def _text(content: list[Json]) -> str:
    return "".join(part.get("text") or part.get("refusal") or "" for part in content)


def _content(content: list[Json]) -> str | list[Json]:
    """A message's content for chat: its text, or where it holds images, chat's parts (text
    parts as they are, each image an ``image_url`` part whose ``file_id`` was read before)."""
    if not any(part.get("type") == "input_image" for part in content):
        return _text(content)
    return [
        {"type": "image_url", "image_url": {"url": part.get("image_url"), "detail": part.get("detail") or "auto"}}
        if part.get("type") == "input_image"
        else {"type": "text", "text": part.get("text") or part.get("refusal") or ""}
        for part in content
    ]


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return _text(output or [])


def chat_messages(items: list[Json]) -> list[Json]:
    """Items (history and this turn) as chat messages: function calls that follow each
    other become one assistant message with tool calls, outputs become tool messages; a
    reasoning item's text is the ``reasoning_content`` of the assistant message it led to
    (the templates that read it: backends/llama/reasoning/; reasoning.readable opens it)."""
    messages: list[Json] = []
    thought = ""  # a reasoning item's text, for the assistant message that follows it
    for item in items:
        kind = item.get("type", "message")
        if kind == "reasoning":
            thought += _text(item.get("content") or item.get("summary") or [])
            continue
        if thought and (kind == "function_call" or (kind == "message" and item.get("role") == "assistant")):
            messages.append({"role": "assistant", "content": "", "reasoning_content": thought})
            thought = ""
        if kind == "message":
            last = messages[-1] if messages else None
            if item["role"] == "assistant" and last is not None and last.get("reasoning_content") and not last["content"] and not last.get("tool_calls"):
                last["content"] = _text(item.get("content") or [])
                continue
            messages.append({"role": item["role"], "content": _content(item.get("content") or [])})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item.get("arguments") or ""},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and (last.get("tool_calls") or not last["content"]):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "compaction":
            # A summary made by POST /v1/responses/compact (see compaction.py).
            summary = item.get("encrypted_content") or ""
            messages.append({"role": "system", "content": f"Summary of the conversation so far:\n{summary}"})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _output_text(item.get("output"))})
    return messages
