"""A Responses request as a chat completion request for the backend.

Three kinds of parameters: those honoured (mapped onto chat's; ``truncation`` and
``context_management``: ``context_window.py``), those accepted because they change nothing a local model would answer
(``include``, ``store``, ``prompt_cache_key``, ``service_tier``, ...: what the Agents SDK
and Codex send by default), and those refused with a 400 naming them, because ignoring them would silently
change the answer (prompts); reasoning effort goes to the model, which honours it or refuses
it (a model that does not reason). Tools other than functions are made functions before
this (``client_tools.py``, ``serving/mcp/servers.py``, ``file_search.py``).
"""

from __future__ import annotations

from typing import Any

from ...errors import bad_request
from ...errors import not_supported_locally as unsupported
from ...json.types import Json
from . import items
# Built-in tools that only OpenAI's cloud can run (a Responses request's are dropped or
# refused before this, in cloud_tools.py; a Realtime session's are refused here).
from .cloud_tools import CLOUD_TOOLS


# Retrieval over vector stores: served by the Files and vector stores work, not yet here.
FILE_SEARCH = "file_search"
# ``include`` asking for each output token's log probability (the other values name tools
# and inputs refused here, or reasoning these models do not produce: nothing to include).
LOGPROBS = "message.output_text.logprobs"


def chat_tools(tools: list[Json] | None, name: str = "tools", served: tuple[str, ...] = ()) -> list[Json]:
    """Responses-shaped tools (a Realtime session's too) as chat's; what a local model cannot
    call refused, naming ``name[i]``; the tool types in ``served`` left out (the caller
    serves them)."""
    chat_tools = []
    for index, tool in enumerate(tools or []):
        kind = tool.get("type")
        param = f"{name}[{index}]"
        if kind in served:
            continue
        if kind == "function":
            function = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
            if tool.get("description"):
                function["description"] = tool["description"]
            if tool.get("strict") is not None:
                function["strict"] = tool["strict"]
            chat_tools.append({"type": "function", "function": function})
        elif kind == "mcp":
            # The Responses API serves it (serving/mcp/servers.py turns it into functions first).
            raise unsupported(f"{param}.type", "'mcp' tools are served by the Responses and Realtime APIs here, not in this one")
        elif kind == FILE_SEARCH:
            raise unsupported(f"{param}.type", "'file_search' needs vector stores, which are not served here yet")
        elif kind in CLOUD_TOOLS:
            raise unsupported(f"{param}.type", f"the '{kind}' tool needs {CLOUD_TOOLS[kind]} in OpenAI's cloud")
        else:
            raise unsupported(f"{param}.type", f"only function tools can be called, not '{kind}' tools")
    return chat_tools


def chat_tool_choice(choice: Any, chat_tools: list[Json]) -> tuple[Any, list[Json]]:
    """Chat's ``tool_choice``, and the tools left to offer (``allowed_tools`` narrows them)."""
    if choice is None or isinstance(choice, str):
        return choice, chat_tools
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": choice["name"]}}, chat_tools
    if kind == "allowed_tools":
        allowed = {tool.get("name") for tool in choice.get("tools") or [] if tool.get("type") == "function"}
        if len(allowed) != len(choice.get("tools") or []):
            raise unsupported("tool_choice.tools", "only function tools can be allowed")
        return choice.get("mode", "auto"), [tool for tool in chat_tools if tool["function"]["name"] in allowed]
    if kind == "mcp":
        raise bad_request(
            f"Tool choice 'mcp' names the server_label '{choice.get('server_label')}', which is not in 'tools'.",
            "tool_choice.server_label",
            "invalid_value",
        )
    raise unsupported("tool_choice", f"'{kind}' names a tool that is not a function")


def _response_format(text: Json | None) -> Json | None:
    text = text or {}
    verbosity = text.get("verbosity")
    if verbosity not in (None, "medium"):
        raise unsupported("text.verbosity", "no verbosity control")
    fmt = text.get("format") or {"type": "text"}
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {"name": fmt["name"], "schema": fmt.get("schema") or {}}
        for key in ("description", "strict"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise unsupported("text.format.type", f"'{kind}' output")


def check(request: Json) -> None:
    """Refuse what a local model cannot honour without changing the answer."""
    if request.get("prompt") is not None:
        raise unsupported("prompt", "prompt templates are stored in OpenAI's cloud")
    if request.get("moderation") is not None:
        raise unsupported("moderation", "no moderation model runs beside them")
    if request.get("personality") is not None:
        raise unsupported("personality", "no style presets")
    if request.get("previous_response_id") and request.get("conversation"):
        raise bad_request(
            "Only one of 'previous_response_id' and 'conversation' may be given.", "conversation", "invalid_value"
        )
    if request.get("background") and request.get("store") is False:
        raise bad_request("Background responses must be stored: 'store' cannot be false.", "store", "invalid_value")


def chat_request(request: Json, history: list[Json], turn: list[Json], stream: bool) -> Json:
    """The chat completion request for this turn: ``instructions`` first (this turn's
    only), then the history's and this turn's items as messages."""
    messages = items.chat_messages([*history, *turn])
    instructions = request.get("instructions")
    if instructions:
        messages = [{"role": "system", "content": instructions}, *messages]
    offered_tools = chat_tools(request.get("tools"))
    choice, offered = chat_tool_choice(request.get("tool_choice"), offered_tools)
    chat: Json = {"model": request["model"], "messages": messages, "stream": stream}
    if offered:
        chat["tools"] = offered
    if choice is not None and (offered or choice != "auto"):
        chat["tool_choice"] = choice
    if request.get("parallel_tool_calls") is not None and offered:
        chat["parallel_tool_calls"] = request["parallel_tool_calls"]
    response_format = _response_format(request.get("text"))
    if response_format:
        chat["response_format"] = response_format
    for name, chat_name in (("temperature", "temperature"), ("top_p", "top_p"), ("max_output_tokens", "max_tokens")):
        if request.get(name) is not None:
            chat[chat_name] = request[name]
    effort = (request.get("reasoning") or {}).get("effort")
    if effort is not None:
        # The model's reasoning family maps it to its template's switch, or a model that does
        # not reason refuses it (backends/llama/reasoning/; service._answer names it).
        chat["reasoning_effort"] = effort
    if request.get("top_logprobs") or LOGPROBS in (request.get("include") or []):
        chat["logprobs"] = True
        chat["top_logprobs"] = request.get("top_logprobs") or 0
    if stream:
        chat["stream_options"] = {"include_usage": True}
    if request.get("prompt_cache_key"):  # what a pool routes the conversation by (backends/prefix_routes.py)
        chat["prompt_cache_key"] = request["prompt_cache_key"]
    return chat
