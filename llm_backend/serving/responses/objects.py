"""The Response object: the request fields OpenAI echoes, output items, usage, status.

A chat completion (or the chunks of one, see ``events.py``) becomes a ``reasoning`` item
(its ``reasoning_content``: ``reasoning.py``), ``message`` items with
``output_text`` parts and ``function_call`` items; ``finish_reason: length`` makes the
response ``incomplete`` for ``max_output_tokens``, as OpenAI reports it.
"""

from __future__ import annotations

import time
from typing import Any

from ...json.types import Json
from . import reasoning
from .items import new_id
from ..mcp.servers import redacted



# OpenAI's defaults of the sampling parameters a Response reports.
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}


def _sampling(request: Json, model_defaults: Json) -> Json:
    """The values the answer is sampled with: the request's, else the model's defaults
    (its preset), else OpenAI's."""
    used = {}
    for name, default in SAMPLING.items():
        value = request.get(name)
        used[name] = float(model_defaults.get(name, default) if value is None else value)
    return used


def skeleton(request: Json, response_id: str, created_at: int, status: str, model_defaults: Json | None = None) -> Json:
    """The response before any output: every request field OpenAI echoes, with its default,
    and the sampling parameters really used (the Open Responses standard requires them all;
    OpenAI sends them too)."""
    conversation = request.get("conversation")
    if isinstance(conversation, str):
        conversation = {"id": conversation}
    text = request.get("text") or {}
    reasoning = request.get("reasoning") or {}
    response = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": bool(request.get("background")),
        "completed_at": None,
        "conversation": {"id": conversation["id"]} if conversation else None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": request["model"],
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": "default",
        "store": request.get("store") is not False,
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": redacted(request.get("tools")),
        "top_logprobs": request.get("top_logprobs") or 0,
        "truncation": request.get("truncation") or "disabled",
        "metadata": request.get("metadata") or {},
        **_sampling(request, model_defaults or {}),
        # Null until the answer is counted, as OpenAI sends it (the document types usage
        # as an object; the Open Responses standard requires the field, nullable).
        "usage": None,
    }
    if request.get("user") is not None:
        response["user"] = request["user"]  # a string in the document, never null
    return response


def usage(chat_usage: Json | None) -> Json | None:
    if not chat_usage:
        return None
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": chat_usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": chat_usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens(chat_usage)},
        "total_tokens": chat_usage["prompt_tokens"] + chat_usage["completion_tokens"],
    }


def reasoning_tokens(chat_usage: Json) -> int:
    return (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0


def added_usage(first: Json | None, second: Json | None) -> Json | None:
    """Two generations' chat usage as one (a response with MCP calls answers several times)."""
    if not first or not second:
        return first or second
    cached = sum((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0 for usage in (first, second))
    return {
        "prompt_tokens": first["prompt_tokens"] + second["prompt_tokens"],
        "completion_tokens": first["completion_tokens"] + second["completion_tokens"],
        "total_tokens": first["prompt_tokens"] + second["prompt_tokens"] + first["completion_tokens"] + second["completion_tokens"],
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens(first) + reasoning_tokens(second)},
    }


def text_part(text: str = "", logprobs: list[Json] | None = None) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def message_item(item_id: str, status: str, content: list[Json]) -> Json:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, status: str, call_id: str, name: str, arguments: str) -> Json:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def call_status(position: int, calls: int, status: str) -> str:
    """The status of call ``position`` of ``calls`` in an answer of ``status``: the token
    limit cuts the last one only, the ones before it were whole."""
    return status if position == calls - 1 else "completed"


def finished(response: Json, output: list[Json], chat_usage: Json | None, finish_reason: str | None) -> Json:
    """``response`` with its output and usage, ``completed`` or ``incomplete``; an answer cut
    short of its ``max_output_tokens`` shows the value the model fitted it to."""
    truncated = finish_reason == "length"
    finished = {
        **response,
        "status": "incomplete" if truncated else "completed",
        "completed_at": None if truncated else int(time.time()),
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "output": output,
    }
    counted = usage(chat_usage)
    if counted is not None:
        finished["usage"] = counted
        asked = response.get("max_output_tokens")
        if truncated and (asked is None or counted["output_tokens"] < asked):
            # Cut short of what was asked: the model fitted the answer to its longest answer
            # or to the room its prompt left in the window (a request for 32,000, Claude
            # Code's and opencode's, on an 8k model), and the client sees the value it got.
            finished["max_output_tokens"] = counted["output_tokens"]
    return finished


def failed(response: Json, output: list[Json], code: str, message: str) -> Json:
    return {**response, "status": "failed", "output": output, "error": {"code": code, "message": message}}


def from_chat(response: Json, completion: Json, sealing: Any = None) -> Json:
    """A whole chat completion as this response's output (``sealing``: how its reasoning
    item's ``encrypted_content`` is made, when the request includes it)."""
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    finish_reason = choice.get("finish_reason")
    status = "incomplete" if finish_reason == "length" else "completed"
    output: list[Json] = []
    # DeepSeek's and llama.cpp's name, or vLLM's newer one (an upstream's answer).
    thought = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(thought, str) and thought:
        output.append(reasoning.output_item(thought, "completed", response, sealing))
    if message.get("content") or not message.get("tool_calls"):
        logprobs = (choice.get("logprobs") or {}).get("content")
        output.append(message_item(new_id("msg"), status, [text_part(message.get("content") or "", logprobs)]))
    calls = message.get("tool_calls") or []
    for position, call in enumerate(calls):
        function = call["function"]
        cut = call_status(position, len(calls), status)
        output.append(function_call_item(new_id("fc"), cut, call["id"], function["name"], function.get("arguments") or ""))
    return finished(response, output, completion.get("usage"), finish_reason)
