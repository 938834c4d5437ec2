"""A Messages request (Anthropic's ``POST /v1/messages``) as this service's own chat
completions request: one pipeline, so everything chat does (tool formats, grammars, the
prefix cache, limits, the max_tokens fit) is what a Messages request gets.

What each field becomes (docs/MESSAGES.md):
- ``system`` (a string or text blocks) and ``role: "system"`` turns inside ``messages``
  (Claude Code sends one): system messages, in their places;
- text blocks: text; ``image`` blocks: ``image_url`` parts, refused or honoured as chat does
  for the model (a tool result's images in the user message after the tool messages: chat's
  tool messages hold text only); ``document`` blocks: refused (no document reader here);
- ``tool_use`` blocks: the assistant turn's ``tool_calls``; ``tool_result`` blocks: ``tool``
  messages right after it (chat's order), an ``is_error`` result's text marked ``Error:``
  for the model to read; ``thinking`` blocks of earlier turns: left out, as Anthropic
  strips earlier turns' thinking from the context (their signatures checked before:
  ``signatures.py``);
- ``tools``: functions (``input_schema`` the parameters); ``defer_loading`` tools are not
  loaded into the context (no tool search runs here to load them later);
- ``tool_choice``: auto, any (``required``), tool (the named function), none;
  ``disable_parallel_tool_use``: ``parallel_tool_calls: false``;
- ``stop_sequences``: ``stop``; ``temperature``, ``top_p``, ``top_k``: the same;
  ``metadata.user_id``: ``user``; ``max_tokens``: ``max_completion_tokens`` (fitted to the
  room left as chat fits it);
- ``cache_control``: accepted everywhere: the engine caches every prompt's beginning anyway;
- ``thinking`` and ``output_config.effort``: ``reasoning_effort`` (``service.py``
  says what a model without reasoning does with them); ``context_management``: the
  ``clear_thinking`` edits only (earlier thinking is never kept), others refused.
"""

from __future__ import annotations

import json
from typing import Any

from llm_backend.errors import bad_request
from llm_backend.errors import unsupported_parameter as refused
from llm_backend.json.types import Json


# thinking.budget_tokens ⇒ the reasoning effort nearest to it (Anthropic's minimum is 1024).
BUDGET_EFFORTS = ((4096, "low"), (16384, "medium"))
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh"}
# Edits of context_management that hold trivially here: earlier thinking is never replayed.
CLEARED_THINKING = "clear_thinking_"


def _text_of(blocks: Any, param: str) -> str:
    """A system prompt or a tool result's content: a string, or text blocks joined."""
    if isinstance(blocks, str):
        return blocks
    texts = []
    for index, block in enumerate(blocks or []):
        if block.get("type") != "text":
            raise refused(f"{param}[{index}]", f"'{param}[{index}]': only text blocks can be here, not '{block.get('type')}'.")
        texts.append(block["text"])
    return "\n\n".join(texts)


def _image_part(block: Json, param: str) -> Json:
    """An ``image`` block as chat's ``image_url`` part (issue #60: a data URL of a ``base64``
    source, a ``url`` source's URL), checked then as chat's images are; Anthropic's ``file``
    source names its own Files API, which is not served here."""
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    kind = source.get("type")
    fields = {"base64": ("media_type", "data"), "url": ("url",)}.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise refused(f"{param}.source.type", f"'{param}.source.type': an image's source is 'base64' or 'url' here, not {kind!r}.")
    for name in fields:
        if not isinstance(source.get(name), str) or not source[name]:
            where = f"{param}.source.{name}"
            raise bad_request(f"'{where}': expected a non-empty string.", where, "invalid_value")
    url = f"data:{source['media_type']};base64,{source['data']}" if kind == "base64" else source["url"]
    return {"type": "image_url", "image_url": {"url": url, "detail": "auto"}}


def _user_turn(content: Any, param: str) -> list[Json]:
    """One user turn: its tool results as ``tool`` messages first (chat's order), then the rest."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[Json] = []
    parts: list[Json] = []
    shown: list[Json] = []  # the tool results' images: chat's tool messages hold text only
    for index, block in enumerate(content):
        kind = block["type"]
        where = f"{param}.content[{index}]"
        if kind == "tool_result":
            result, images = _tool_result(block, where)
            results.append(result)
            shown += images
        elif kind == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image_part(block, where))
        elif kind in ("thinking", "redacted_thinking", "tool_use"):
            raise bad_request(f"'{where}': a user turn cannot hold a '{kind}' block.", where, "invalid_value")
        else:
            raise refused(where, f"'{where}': '{kind}' blocks are not supported here.")
    # A tool result's images (Claude Code's Read of a picture, a screenshot) follow the tool
    # messages in the user message chat allows them in, before the turn's own parts.
    parts = shown + parts
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _tool_result(block: Json, where: str) -> tuple[Json, list[Json]]:
    """A ``tool_result`` block as chat's ``tool`` message (its text blocks; an ``is_error``
    result marked ``Error:`` for the model to read) and its ``image`` blocks as chat parts."""
    content = block.get("content") or ""
    texts: list[str] = []
    images: list[Json] = []
    for index, item in enumerate(content if isinstance(content, list) else [{"type": "text", "text": content}]):
        kind, param = item.get("type"), f"{where}.content[{index}]"
        if kind == "image":
            images.append(_image_part(item, param))
        elif kind == "text":
            texts.append(item["text"])
        else:
            raise refused(param, f"'{param}': only text and image blocks can be here, not '{kind}'.")
    text = "\n\n".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}"  # the model reads that the call failed
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}, images


def _assistant_turn(content: Any, param: str) -> list[Json]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    texts: list[str] = []
    calls: list[Json] = []
    for index, block in enumerate(content):
        kind = block["type"]
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = json.dumps(block["input"], ensure_ascii=False)
            calls.append({"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # an earlier turn's thinking: stripped from the context, as Anthropic does
        else:
            where = f"{param}.content[{index}]"
            raise bad_request(f"'{where}': an assistant turn cannot hold a '{kind}' block.", where, "invalid_value")
    message: Json = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def chat_messages(body: Json) -> list[Json]:
    messages: list[Json] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text_of(body["system"], "system")})
    for index, message in enumerate(body["messages"]):
        param, role, content = f"messages[{index}]", message["role"], message["content"]
        if role == "user":
            messages.extend(_user_turn(content, param))
        elif role == "assistant":
            messages.extend(_assistant_turn(content, param))
        else:
            messages.append({"role": "system", "content": _text_of(content, f"{param}.content")})
    return messages


def _tools(body: Json) -> list[Json]:
    tools = []
    for tool in body.get("tools") or []:
        if tool.get("defer_loading"):
            continue  # loaded only when a tool search finds it: none runs here
        function = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict"):
            function["strict"] = True
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(choice: Json) -> Any:
    kind = choice["type"]
    if kind == "tool":
        if not choice.get("name"):
            raise bad_request("'tool_choice.name': required when 'tool_choice.type' is 'tool'.", "tool_choice.name", "missing_required_parameter")
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[kind]


def reasoning_effort(body: Json) -> str | None:
    """The reasoning effort ``thinking`` and ``output_config.effort`` ask for; None: the model's own."""
    thinking = body.get("thinking") or {}
    effort = (body.get("output_config") or {}).get("effort")
    if thinking.get("type") == "disabled":
        if effort is not None:
            raise bad_request("'output_config.effort' cannot be set while 'thinking' is disabled.", "output_config.effort", "invalid_value")
        return None
    if effort is not None:
        return EFFORTS[effort]
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            raise bad_request("'thinking.budget_tokens': required when thinking is enabled.", "thinking.budget_tokens", "missing_required_parameter")
        return next((name for most, name in BUDGET_EFFORTS if budget <= most), "high")
    return None


def _check_context_management(body: Json) -> None:
    for index, edit in enumerate((body.get("context_management") or {}).get("edits") or []):
        if not str(edit.get("type")).startswith(CLEARED_THINKING):
            param = f"context_management.edits[{index}].type"
            raise refused(param, f"'{param}': '{edit.get('type')}' is not supported here (only clear_thinking edits).")


def chat_request(body: Json, stream: bool) -> Json:
    """The chat completions request ``body`` (a Messages request, validated) becomes."""
    _check_context_management(body)
    chat: Json = {"model": body["model"], "messages": chat_messages(body)}
    if "max_tokens" in body:
        chat["max_completion_tokens"] = body["max_tokens"]
    tools = _tools(body)
    choice = body.get("tool_choice")
    if tools:
        chat["tools"] = tools
        if choice is not None:
            chat["tool_choice"] = _tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                chat["parallel_tool_calls"] = False
    elif choice is not None and choice["type"] not in ("auto", "none"):
        raise bad_request(f"'tool_choice' is '{choice['type']}' but no 'tools' were given.", "tool_choice", "invalid_value")
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    effort = reasoning_effort(body)
    if effort is not None:
        chat["reasoning_effort"] = effort
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat
