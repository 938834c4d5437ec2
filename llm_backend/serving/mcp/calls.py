"""The MCP items of a conversation: calls and approvals, and what the model reads of them.

Approvals are honoured or refused, never ignored (ogx-ai/ogx#3443, smg-project/smg#159):
a call of a tool that ``require_approval`` covers becomes an ``mcp_approval_request`` item
that ends the response, recorded (``storage/mcp_approvals.py``) with its owner and a
digest of the call. An ``mcp_approval_response`` in a later request must name a request
found in what that request continues (its ``previous_response_id`` chain, its
conversation, or the items it sends back) that this service issued to the same tenant for
the same call on the same server (label and ``server_url``), not answered before; it is
answered once, atomically: approved, the call runs once, before the model answers;
declined, the model reads that it was declined. An id from another conversation, another
tenant, a changed call, a label now naming another URL, or a second answer is 400.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from ...errors import bad_request
from ...json.types import Json
from ..services import Services
from ..responses.items import new_id
from .servers import Catalog, McpServer


DECLINED = "The user declined to run this tool call; it was not run."
NOT_FINISHED = "The tool call did not finish."
MCP_ITEMS = ("mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response")


def call_item(server_label: str, name: str, arguments: str = "", approval_request_id: str | None = None) -> Json:
    return {
        "id": new_id("mcp"),
        "type": "mcp_call",
        "status": "in_progress",
        "server_label": server_label,
        "name": name,
        "arguments": arguments,
        "output": None,
        "error": None,
        "approval_request_id": approval_request_id,
    }


def approval_request_item(server_label: str, name: str, arguments: str = "") -> Json:
    return {"id": new_id("mcpr"), "type": "mcp_approval_request", "server_label": server_label, "name": name, "arguments": arguments}


def digest(item: Json, server_url: str) -> str:
    """The call an approval request asks about: server (its label and the URL the label
    stood for), tool and arguments exactly. The item names only the label, which a later
    request may point anywhere: the URL is what the user approved sending the call to."""
    call = json.dumps([item.get("server_label"), server_url, item.get("name"), item.get("arguments")], ensure_ascii=False)
    return hashlib.sha256(call.encode()).hexdigest()


def content_text(content: Any) -> str:
    """A tool's failure content (``mcp_tool_execution_error``: any JSON, an item's may be
    the client's) as text: its text parts, else the content as JSON."""
    parts = content if isinstance(content, list) else []
    texts = [part["text"] for part in parts if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]]
    return "\n".join(texts) or json.dumps(content, ensure_ascii=False)


def _error_text(error: Any) -> str:
    if isinstance(error, dict) and error.get("type") == "mcp_tool_execution_error":
        return "The tool failed: " + content_text(error.get("content"))
    if isinstance(error, dict):
        return f"The tool call failed: {error.get('message') or error.get('type')}"
    return f"The tool call failed: {error}"


def replayable(items: list[Json], catalog: Catalog | None) -> list[Json]:
    """Items for the chat translation: an ``mcp_call`` as the function call and output the
    model made and read, a declined approval as the call and the refusal; listings and
    pending or approved requests carry nothing for the model (an approved one's call
    follows as an ``mcp_call``)."""
    requests = {item.get("id"): item for item in items if item.get("type") == "mcp_approval_request"}
    replayed = []
    for item in items:
        kind = item.get("type")
        if kind not in MCP_ITEMS:
            replayed.append(item)
            continue
        if kind == "mcp_call":
            call, output = item, item.get("output")
            if output is None:
                output = _error_text(item["error"]) if item.get("error") else NOT_FINISHED
        elif kind == "mcp_approval_response" and not item.get("approve") and item.get("approval_request_id") in requests:
            call = requests[item["approval_request_id"]]
            output = DECLINED + (f" Reason: {item['reason']}" if item.get("reason") else "")
        else:
            continue
        label, name = call.get("server_label") or "", call.get("name") or ""
        function = catalog.function(label, name) if catalog is not None else f"{label}__{name}"
        call_id = call.get("id") or new_id("mcp")
        replayed.append({"type": "function_call", "call_id": call_id, "name": function, "arguments": call.get("arguments") or "{}"})
        replayed.append({"type": "function_call_output", "call_id": call_id, "output": output})
    return replayed


def answers_approvals(turn: list[Json]) -> bool:
    return any(item.get("type") == "mcp_approval_response" for item in turn)


def _input_param(index: int) -> str:
    return f"input[{index}].approval_request_id"


async def approved_calls(
    services: Services,
    owner: str,
    servers: list[McpServer],
    earlier: list[Json],
    turn: list[Json],
    param_of: Callable[[int], str] = _input_param,
) -> list[Json]:
    """Check and answer this turn's approval responses (see the module docstring); the
    ``mcp_call`` items of the approved ones, to run before the model answers. ``param_of``:
    the parameter naming the ``approval_request_id`` of the turn's item ``index``."""
    requests = {item.get("id"): item for item in [*earlier, *turn] if item.get("type") == "mcp_approval_request"}
    by_label = {server.label: server for server in servers}
    answers = [(index, item) for index, item in enumerate(turn) if item.get("type") == "mcp_approval_response"]
    for index, item in answers:
        param = param_of(index)
        request = requests.get(item["approval_request_id"])
        if request is None:
            raise bad_request(
                f"No MCP approval request with id '{item['approval_request_id']}' was found in the items this request "
                "continues (its previous_response_id, its conversation, or its input).",
                param,
                "invalid_value",
            )
        label = request.get("server_label")
        server = by_label.get(label) if isinstance(label, str) else None
        if server is None or server.tool(request.get("name")) is None:
            raise bad_request(
                f"The tool '{request.get('name')}' of the MCP server '{request.get('server_label')}' that approval "
                f"request '{request['id']}' asks about is not among the allowed tools of this request.",
                param,
                "invalid_value",
            )
    calls = []
    for index, item in answers:
        request = requests[item["approval_request_id"]]
        server_url = by_label[request["server_label"]].url
        database = services.database
        if not await database.run(database.mcp_approvals.answer, owner, request["id"], digest(request, server_url)):
            raise bad_request(
                f"The MCP approval request '{request['id']}' cannot be answered: it was answered before, or it is not "
                "one this service issued to you for this very call on this very server_url.",
                param_of(index),
                "invalid_value",
            )
        if item.get("approve"):
            calls.append(call_item(request["server_label"], request["name"], request.get("arguments") or "", request["id"]))
    return calls
