"""One response's ``mcp`` tools at work: what ``responses/events.ResponseStream`` asks of them.

``prepare`` (before anything is stored or generated: its errors are HTTP errors) checks
the tools, lists the servers not listed earlier in the conversation, and answers the
turn's approvals. Then, while the response streams, ``McpRun`` says which of the model's
calls are MCP calls (``item_for``: an ``mcp_call``, or an ``mcp_approval_request`` when
the tool needs approval), records the approval requests it issues, runs the calls
(``run``: at most ``mcp_max_calls`` per response, fewer with ``max_tool_calls``; the
arguments must be a JSON object), and asks the model again once every call of an answer
ran (``next_round``: no approval pending, no function call for the client to run).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

from ...json.types import Json
from ...mcp.connector import McpFailure
from ..services import Services
from .calls import approval_request_item, approved_calls, call_item, digest
from .servers import Catalog, McpServer, list_tools, servers

# A JSON-RPC "server error" code for a call this service did not make.
NOT_RUN = -32000

Answer = Callable[[list[Json], Json | None, int], Awaitable[AsyncIterator[Json] | None]]


class McpRun:
    def __init__(
        self, services: Services, owner: str, response_id: str, catalog: Catalog, listed: list[Json], calls_left: int
    ) -> None:
        self.services = services
        self.owner = owner
        self.response_id = response_id
        self.catalog = catalog
        self.listed = listed  # the new mcp_list_tools items: the response's first output
        self.pending: list[Json] = []  # approved calls of this turn's input, run first
        self.calls_left = calls_left
        self.answer: Answer | None = None  # the model's next answer (responses/service.py)

    def item_for(self, function: str) -> Json | None:
        """The output item of a call of ``function``: None unless it is an MCP tool's."""
        found = self.catalog.tools.get(function)
        if found is None:
            return None
        server, tool = found
        if server.needs_approval(tool["name"]):
            return approval_request_item(server.label, tool["name"])
        return call_item(server.label, tool["name"])

    async def issue(self, generation: list[Json]) -> None:
        """Record the approval requests of an answer before the client can see them whole."""
        requests = {
            item["id"]: digest(item, self.catalog.servers[item["server_label"]].url)
            for item in generation
            if item.get("type") == "mcp_approval_request"
        }
        if requests:
            database = self.services.database
            await database.run(database.mcp_approvals.issue, self.owner, self.response_id, requests)

    async def run(self, item: Json) -> None:
        """Run one ``mcp_call`` item: its output, or its typed error, and its status."""
        if self.calls_left <= 0:
            message = "Not run: this response made as many MCP calls as it may (max_tool_calls, mcp_max_calls)."
            item.update(status="failed", error={"type": "mcp_protocol_error", "code": NOT_RUN, "message": message})
            return
        self.calls_left -= 1
        try:
            arguments = json.loads(item["arguments"] or "{}")
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            message = "Not run: the arguments are not a JSON object."
            item.update(status="failed", error={"type": "mcp_protocol_error", "code": NOT_RUN, "message": message})
            return
        server = self.catalog.servers[item["server_label"]]
        try:
            output = await self.services.mcp.call_tool(server.server, item["name"], arguments)
        except McpFailure as failure:
            item.update(status="failed", error=failure.error)
        else:
            item.update(status="completed", output=output)

    async def next_round(self, output: list[Json], generation: list[Json], spent: Json | None) -> AsyncIterator[Json] | None:
        """The model's next answer, when every call of its last one was an MCP call that ran."""
        kinds = {item.get("type") for item in generation}
        if "mcp_call" not in kinds or kinds & {"function_call", "mcp_approval_request"} or self.answer is None:
            return None
        return await self.answer(output, spent, self.calls_left)


def call_budget(services: Services, body: Json) -> int:
    limit = services.settings.mcp_max_calls
    return limit if body.get("max_tool_calls") is None else min(limit, body["max_tool_calls"])


async def prepare_tools(services: Services, body: Json, seen: list[Json]) -> tuple[list[McpServer], list[Json], Catalog] | None:
    """The request's MCP servers (checked), the new ``mcp_list_tools`` items (servers not in
    ``seen``, the conversation so far), and the function names; None without ``mcp`` tools."""
    if not any(tool.get("type") == "mcp" for tool in body.get("tools") or []):
        return None
    found = servers(body, services.mcp)
    listed = await list_tools(services.mcp, found, seen)
    functions = [tool.get("name") for tool in body.get("tools") or [] if tool.get("type") == "function"]
    return found, listed, Catalog(found, functions)


async def prepare(
    services: Services, owner: str, body: Json, earlier: list[Json], turn: list[Json], response_id: str
) -> McpRun | None:
    """The response's ``McpRun`` (None without ``mcp`` tools), this turn's approvals answered."""
    prepared = await prepare_tools(services, body, [*earlier, *turn])
    if prepared is None:
        await approved_calls(services, owner, [], earlier, turn)  # an approval needs its server: 400
        return None
    found, listed, catalog = prepared
    run = McpRun(services, owner, response_id, catalog, listed, call_budget(services, body))
    run.pending = await approved_calls(services, owner, found, earlier, turn)
    return run
