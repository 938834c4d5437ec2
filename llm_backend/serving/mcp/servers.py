"""The request's ``mcp`` tools: checked, their servers' tools listed (once per server per
conversation), and offered to the model as ordinary function tools.

A local model calls functions; the engine knows nothing of MCP. Each allowed tool of each
server becomes a function whose name joins the server's label and the tool's name
(``Catalog``: unique across servers and beside the request's own functions, within the 64
characters of a function name), so the chat request carries ordinary ``tools`` and
``tool_choice``: ``{"type": "mcp", "server_label", "name"}`` becomes a named function and
``required`` stays required, both decoded under the engine's grammar for the tool's
``input_schema``.

A server is listed once per conversation: an ``mcp_list_tools`` item of the same label in
the history (a ``previous_response_id`` chain, the conversation, or the items a client
sends back) is reused, so a second turn lists nothing (ogx-ai/ogx#4452: listed every
turn). ``allowed_tools`` (names, ``read_only``) filters before anything is shown to the
model or the client: a tool it hides is neither in the list item nor callable.

Errors before anything is stored: a URL the address policy refuses is 400 naming
``tools[i].server_url``; a server that cannot be listed is OpenAI's 424
(``external_connector_error``). ``headers`` and ``authorization`` go to the server only:
the echoed and stored tools have neither (``redacted``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import anyio

from ... import errors
from ...errors import OpenAIError, bad_request
from ...errors import not_supported_locally as unsupported
from ...json.types import Json
from ...mcp.connector import Connector, McpFailure, Server
from ...mcp.egress import Refused, shown
from ..responses.items import new_id


TOOL = "mcp"
# Servers one request may name: each is a connection (listing) per request at most.
MAX_SERVERS = 16
_FUNCTION_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SECRET_FIELDS = ("authorization", "headers")


def _matches(tool: Json, rule: Any) -> bool:
    """Whether ``tool`` matches an ``MCPToolFilter`` (every criterion it gives), or a list of names."""
    if isinstance(rule, list):
        return tool["name"] in rule
    if rule.get("tool_names") is not None and tool["name"] not in rule["tool_names"]:
        return False
    if rule.get("read_only") is not None:
        annotations = tool.get("annotations") or {}
        read_only = annotations.get("readOnlyHint", annotations.get("read_only")) is True
        return read_only == rule["read_only"]
    return True


@dataclass
class McpServer:
    """One ``mcp`` tool of the request."""

    index: int
    label: str
    url: str
    server: Server = field(repr=False)
    allowed: Any = None
    approval: Any = "always"
    description: str | None = None
    tools: list[Json] = field(default_factory=list)  # the allowed ones, once listed
    prefix: str = ""  # where the request's tools are: "" (Responses), "session." (Realtime)

    @property
    def param(self) -> str:
        return f"{self.prefix}tools[{self.index}]"

    def allows(self, tool: Json) -> bool:
        return self.allowed is None or _matches(tool, self.allowed)

    def needs_approval(self, name: str) -> bool:
        """``require_approval``: ``always`` (the default), ``never``, or filters: a tool the
        ``never`` filter matches and the ``always`` one does not runs unasked."""
        policy = self.approval
        if policy in (None, "always"):
            return True
        if policy == "never":
            return False
        tool = next((tool for tool in self.tools if tool["name"] == name), {"name": name})
        if policy.get("always") is not None and _matches(tool, policy["always"]):
            return True
        return not (policy.get("never") is not None and _matches(tool, policy["never"]))

    def tool(self, name: str | None) -> Json | None:
        return next((tool for tool in self.tools if tool["name"] == name), None)


def _headers(tool: Json) -> dict[str, str]:
    headers = dict(tool.get("headers") or {})
    if tool.get("authorization"):
        headers["Authorization"] = f"Bearer {tool['authorization']}"
    return headers


def servers(body: Json, connector: Connector | None, prefix: str = "") -> list[McpServer]:
    """The request's ``mcp`` tools, checked (400 naming the field; nothing connected yet);
    ``prefix``: where ``body`` is in the request (``session.``: a Realtime session's)."""
    found: list[McpServer] = []
    for index, tool in enumerate(body.get("tools") or []):
        if tool.get("type") != TOOL:
            continue
        param = f"{prefix}tools[{index}]"
        for name in ("connector_id", "tunnel_id"):
            if tool.get(name) is not None:
                what = "OpenAI's service connectors" if name == "connector_id" else "OpenAI's Secure MCP Tunnels"
                raise unsupported(f"{param}.{name}", f"'{name}' needs {what}; give the server's 'server_url'")
        if tool.get("defer_loading"):
            raise unsupported(f"{param}.defer_loading", "tool search is not served here: every tool is loaded")
        if tool.get("allowed_callers") is not None:
            raise unsupported(f"{param}.allowed_callers", "tools are called by the model only")
        if not tool.get("server_url"):
            raise bad_request(f"Missing required parameter: '{param}.server_url'.", f"{param}.server_url", "missing_required_parameter")
        label = tool["server_label"]
        if not label:
            raise bad_request(f"Invalid '{param}.server_label': empty string.", f"{param}.server_label", "empty_string")
        if any(server.label == label for server in found):
            raise bad_request(f"Duplicate MCP server_label '{label}' in 'tools'.", f"{param}.server_label", "invalid_value")
        if connector is None:
            raise unsupported(f"{param}.type", "this server calls no MCP servers")
        try:
            connector.check(tool["server_url"])
        except Refused as refused:
            raise bad_request(f"The MCP server cannot be used: {refused}", f"{param}.server_url", "invalid_value") from None
        found.append(
            McpServer(
                index, label, tool["server_url"], Server(tool["server_url"], _headers(tool)),
                tool.get("allowed_tools"), tool.get("require_approval", "always"), tool.get("server_description"),
                prefix=prefix,
            )
        )
    if len(found) > MAX_SERVERS:
        raise bad_request(f"At most {MAX_SERVERS} MCP servers may be given.", found[MAX_SERVERS].param, "invalid_value")
    return found


def redacted(tools: list[Json] | None) -> list[Json]:
    """The tools as echoed and stored: an ``mcp`` tool's ``authorization`` and ``headers``
    are never kept or shown (``headers`` shows as null, as OpenAI's echo does)."""
    shown_tools = []
    for tool in tools or []:
        if isinstance(tool, dict) and tool.get("type") == TOOL and any(name in tool for name in _SECRET_FIELDS):
            tool = {key: value for key, value in tool.items() if key != "authorization"}
            if "headers" in tool:
                tool["headers"] = None
        shown_tools.append(tool)
    return shown_tools


def earlier_list(items: list[Json], label: str) -> Json | None:
    """The conversation's last good ``mcp_list_tools`` item of the server ``label``."""
    for item in reversed(items):
        if item.get("type") == "mcp_list_tools" and item.get("server_label") == label and not item.get("error"):
            return item
    return None


def listing_failed(server: McpServer, failure: McpFailure) -> OpenAIError:
    """The error of a server that could not be listed (the catalogue's words, naming it)."""
    return errors.mcp_listing_failed(server.label, shown(server.url), server.param, failure.error, failure.refused)


def reuse(server: McpServer, listing: Json) -> None:
    """The server's allowed tools, as an earlier ``mcp_list_tools`` item listed them."""
    server.tools = [tool for tool in listing.get("tools") or [] if server.allows(tool)]


async def list_one(connector: Connector, server: McpServer) -> list[Json]:
    """List ``server`` (``McpFailure`` if it cannot be): its allowed tools, filled in."""
    tools = await connector.list_tools(server.server)
    server.tools = [tool for tool in tools if server.allows(tool)]
    return server.tools


async def list_tools(connector: Connector, found: list[McpServer], history: list[Json]) -> list[Json]:
    """Fill each server's allowed tools, from the history's ``mcp_list_tools`` item of its
    label or by listing it (all servers at once); the new ``mcp_list_tools`` items."""
    listed: list[McpServer] = []
    failures: list[tuple[McpServer, McpFailure]] = []

    async def one(server: McpServer) -> None:
        try:
            await list_one(connector, server)
            listed.append(server)
        except McpFailure as failure:
            failures.append((server, failure))

    async with anyio.create_task_group() as group:
        for server in found:
            earlier = earlier_list(history, server.label)
            if earlier is not None:
                reuse(server, earlier)
            else:
                group.start_soon(one, server)
    if failures:
        server, failure = min(failures, key=lambda pair: pair[0].index)
        raise listing_failed(server, failure)
    return [
        {"id": new_id("mcpl"), "type": "mcp_list_tools", "server_label": server.label, "tools": server.tools, "error": None}
        for server in sorted(listed, key=lambda server: server.index)
    ]


def _function_name(label: str, tool: str, taken: set[str]) -> str:
    raw = f"{label}__{tool}"
    name = _UNSAFE.sub("_", raw)
    if len(name) > _FUNCTION_NAME or name in taken:
        digest = hashlib.sha256(raw.encode()).hexdigest()
        name = f"{name[: _FUNCTION_NAME - 9]}_{digest[:8]}"
        serial = 2
        while name in taken:
            name = f"{name[: _FUNCTION_NAME - 9 - len(str(serial))]}_{digest[:8]}{serial}"
            serial += 1
    taken.add(name)
    return name


class Catalog:
    """The function names the model sees, each meaning one tool of one server."""

    def __init__(self, found: list[McpServer], functions: list[str]) -> None:
        taken = set(functions)
        self.servers = {server.label: server for server in found}
        self.tools: dict[str, tuple[McpServer, Json]] = {}
        self.names: dict[tuple[str, str], str] = {}
        for server in found:
            for tool in server.tools:
                name = _function_name(server.label, tool["name"], taken)
                self.tools[name] = (server, tool)
                self.names[(server.label, tool["name"])] = name

    def function(self, label: str, name: str) -> str:
        """The function name of a server's tool (for the history, one no longer offered too)."""
        return self.names.get((label, name)) or _UNSAFE.sub("_", f"{label}__{name}")[:_FUNCTION_NAME]

    def functions(self, server: McpServer) -> list[Json]:
        described = f"{server.description}: " if server.description else ""
        return [
            {
                "type": "function",
                "name": self.names[(server.label, tool["name"])],
                "description": f"{described}{tool.get('description') or tool['name']}",
                "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
                "strict": False,
            }
            for tool in server.tools
        ]

    def _choice(self, choice: Json, param: str) -> Json:
        label = choice.get("server_label")
        server = self.servers.get(label) if isinstance(label, str) else None
        if server is None:
            raise bad_request(
                f"Tool choice 'mcp' names the server_label '{choice.get('server_label')}', which is not in 'tools'.",
                f"{param}.server_label",
                "invalid_value",
            )
        if choice.get("name") is None:
            names = [self.names[(server.label, tool["name"])] for tool in server.tools]
            return {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": name} for name in names]}
        if server.tool(choice["name"]) is None:
            raise bad_request(
                f"Tool choice names '{choice['name']}', which is not among the allowed tools of the MCP server "
                f"'{server.label}'.",
                f"{param}.name",
                "invalid_value",
            )
        return {"type": "function", "name": self.names[(server.label, choice["name"])]}

    def chat_body(self, body: Json, prefix: str = "") -> Json:
        """``body`` as the chat translation sees it: each ``mcp`` tool as its functions, an
        ``mcp`` tool choice as the function (or functions) it forces (a 400 naming
        ``<prefix>tool_choice`` when it names a tool that is not offered)."""
        tools: list[Json] = []
        for tool in body.get("tools") or []:
            tools += self.functions(self.servers[tool["server_label"]]) if tool.get("type") == TOOL else [tool]
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == TOOL:
            choice = self._choice(choice, f"{prefix}tool_choice")
        elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            allowed = []
            for position, entry in enumerate(choice.get("tools") or []):
                if entry.get("type") != TOOL:
                    allowed.append(entry)
                    continue
                forced = self._choice(entry, f"{prefix}tool_choice.tools[{position}]")
                allowed += forced["tools"] if forced["type"] == "allowed_tools" else [forced]
            choice = {**choice, "tools": allowed}
        return {**body, "tools": tools, "tool_choice": choice}
