"""Listing and calling the tools of one remote MCP server, with the ``mcp`` package's
client (protocol versions of both eras: ``auto`` probes ``server/discover``, then falls
back to the ``initialize`` handshake), over streamable HTTP, or SSE for a URL whose path
ends in ``/sse`` (the convention of SSE servers, whose endpoint is a GET stream).

Each listing and each call is one connection, within ``Budgets``: ``timeout`` seconds in
all (connecting included), ``max_bytes`` read in all, holding ``max_values`` JSON values
in all (counted before they are parsed), ``max_tools`` tools listed; it runs on the thread
of ``beside.py``, off the service's event loop. A
failure is an ``McpFailure`` carrying the OpenAI document's typed error (``http_error``
with the server's HTTP status, ``mcp_protocol_error`` with the JSON-RPC code,
``mcp_tool_execution_error`` with the tool's own content); ``refused`` when the address
policy (``egress.py``) stopped it. Headers (the authorization among them) go to the server
only: never into an error, an item or a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx2

from ..json.types import Json
from .beside import LoopThread
from .egress import Refused, ServerPolicy, shown
from .transport import Exchange, TooLarge, http_client, origin

if TYPE_CHECKING:
    from mcp import Client

log = logging.getLogger(__name__)

# JSON-RPC's "internal error": an answer that could not be read as MCP.
INTERNAL_ERROR = -32603


@dataclass(frozen=True)
class Server:
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Budgets:
    timeout: float
    max_bytes: int
    max_values: int
    max_tools: int


class McpFailure(Exception):
    def __init__(self, error: Json, refused: bool = False) -> None:
        super().__init__(error.get("message") or "The MCP tool failed.")
        self.error = error
        self.refused = refused


def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _failure(error: BaseException, exchange: Exchange, budgets: Budgets) -> McpFailure:
    leaf = _leaf(error)
    if isinstance(leaf, Refused) or exchange.refused:
        return McpFailure({"type": "http_error", "code": 403, "message": exchange.refused or str(leaf)}, refused=True)
    if exchange.too_large or isinstance(leaf, TooLarge):
        message = f"The MCP server's answer was refused: {leaf if isinstance(leaf, TooLarge) else 'too large'} ({exchange.budget})."
        return McpFailure({"type": "mcp_protocol_error", "code": INTERNAL_ERROR, "message": message})
    if isinstance(leaf, TimeoutError):
        message = f"The MCP server did not answer within {budgets.timeout:g} seconds (mcp_timeout)."
        return McpFailure({"type": "http_error", "code": 504, "message": message})
    if exchange.status is not None:
        return McpFailure({"type": "http_error", "code": exchange.status, "message": f"The MCP server answered HTTP {exchange.status}."})
    from mcp.shared.exceptions import MCPError  # imported when used: 0.45 s of each start-up

    if isinstance(leaf, MCPError):
        return McpFailure({"type": "mcp_protocol_error", "code": leaf.error.code, "message": leaf.error.message[:1000]})
    if isinstance(leaf, httpx2.TransportError):
        return McpFailure({"type": "http_error", "code": 502, "message": f"Could not reach the MCP server ({type(leaf).__name__})."})
    return McpFailure({"type": "mcp_protocol_error", "code": INTERNAL_ERROR, "message": "The MCP server's answer could not be read."})


def _is_sse(url: str) -> bool:
    return httpx2.URL(url).path.rstrip("/").endswith("/sse")


class Connector:
    """The service's way to MCP servers: its address policy and budgets (from settings)."""

    def __init__(self, policy: ServerPolicy, budgets: Budgets) -> None:
        self.policy = policy
        self.budgets = budgets
        self.beside = LoopThread()

    def check(self, url: str) -> None:
        """Refuse (``Refused``) a URL the policy rules out, before any connection."""
        self.policy.route(url)

    @asynccontextmanager
    async def _connected(self, server: Server, exchange: Exchange) -> AsyncIterator[Client]:
        # The MCP SDK is imported on the first call, not with the service (0.45 s of CPU of
        # every start-up, for a tool most deployments never use).
        from mcp import Client
        from mcp.client.sse import sse_client
        from mcp.client.streamable_http import streamable_http_client

        route = self.policy.route(server.url)
        timeout = self.budgets.timeout
        if _is_sse(server.url):
            # A listed SSE server's message endpoint is on its origin (see transport.py).
            sse_origin = origin(server.url) if route == "listed" else None

            def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
                headers = {**server.headers, **(headers or {})}
                return http_client(self.policy, exchange, self.budgets.timeout, headers, sse_origin)

            transport = sse_client(server.url, timeout=timeout, sse_read_timeout=timeout, httpx_client_factory=factory)
            async with Client(transport, cache=None) as client:
                yield client
        else:
            async with http_client(self.policy, exchange, timeout, server.headers) as http:
                async with Client(streamable_http_client(server.url, http_client=http), cache=None) as client:
                    yield client

    async def _run(self, server: Server, operation: Any) -> Any:
        try:
            return await self.beside.run(self._connection(server, operation))
        except McpFailure as failure:
            log.info("MCP server %s: %s", shown(server.url), failure.error.get("message") or failure.error["type"])
            raise

    async def _connection(self, server: Server, operation: Any) -> Any:
        """One connection and its ``operation``, on the thread beside the loop."""
        exchange = Exchange(self.budgets.max_bytes, self.budgets.max_values)
        try:
            with anyio.fail_after(self.budgets.timeout):
                async with self._connected(server, exchange) as client:
                    return await operation(client)
        except Exception as error:
            # The client's task groups wrap what the operation raised, its own failures too.
            failure = _leaf(error)
            if not isinstance(failure, McpFailure):
                failure = _failure(error, exchange, self.budgets)
            raise failure from None

    async def list_tools(self, server: Server) -> list[Json]:
        """Every tool of the server, as the document's ``MCPListToolsTool``."""

        async def listing(client: Client) -> list[Json]:
            tools: list[Json] = []
            cursor = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools += [_listed(tool.model_dump(mode="json", by_alias=True, exclude_none=True)) for tool in page.tools]
                if len(tools) > self.budgets.max_tools:
                    message = f"The MCP server lists more than {self.budgets.max_tools} tools (mcp_max_tools)."
                    raise McpFailure({"type": "mcp_protocol_error", "code": INTERNAL_ERROR, "message": message})
                cursor = page.next_cursor
                if not cursor or not page.tools:
                    return tools

        return await self._run(server, listing)

    async def call_tool(self, server: Server, name: str, arguments: Json) -> str:
        """The tool's output as text; its own failure is an ``mcp_tool_execution_error``."""

        async def call(client: Client) -> str:
            result = await client.call_tool(name, arguments)
            content = [part.model_dump(mode="json", by_alias=True, exclude_none=True) for part in result.content]
            if result.is_error:
                raise McpFailure({"type": "mcp_tool_execution_error", "content": content})
            texts = [part["text"] for part in content if part.get("type") == "text"]
            if texts:
                return "\n".join(texts)
            if result.structured_content is not None:
                return json.dumps(result.structured_content, ensure_ascii=False)
            return json.dumps(content, ensure_ascii=False)

        return await self._run(server, call)


def _listed(tool: Json) -> Json:
    listed = {"name": tool["name"], "input_schema": tool.get("inputSchema") or {"type": "object"}}
    if tool.get("description") is not None:
        listed["description"] = tool["description"]
    listed["annotations"] = tool.get("annotations") or None
    return listed
