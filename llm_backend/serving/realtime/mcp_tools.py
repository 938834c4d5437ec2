"""The ``mcp`` tools of a Realtime conversation (issue #43): the Responses API's pieces
(``serving/mcp/``: the tools checked, each server listed once per
conversation, its allowed tools offered to the model as functions, a forced call decoded
under the tool's ``input_schema``, calls and approvals answered once) with Realtime's
events and items.

- **Listing**: a ``session.update`` naming a server the conversation has not listed lists
  it at once, beside the session's other events; a response lists the servers of its own
  ``tools`` (and waits for those still being listed) before it begins. An ``mcp_list_tools``
  item is added (``conversation.item.added``), ``mcp_list_tools.in_progress``, then
  ``.completed`` and ``conversation.item.done`` with the allowed tools - or ``.failed`` and
  an ``error`` event (OpenAI's 424 ``external_connector_error`` naming ``session.tools[i]``;
  that server is listed again next time).
- **Calls** (``response.py``): a call of an MCP tool is an ``mcp_call`` item of the response,
  its arguments streamed; once the model's answer is over, the calls run, in order, within
  the response (``response.mcp_call.in_progress``, ``.completed`` / ``.failed``), and the
  model reads their outputs in the next response, as OpenAI's Realtime API does (the
  Agents SDK asks for that response when a call's ``conversation.item.done`` comes, which
  is sent after ``response.done``).
- **Approvals**: a call ``require_approval`` covers is an ``mcp_approval_request`` item that
  ends its response. The client's ``conversation.item.create`` of an
  ``mcp_approval_response`` is checked (a request of this conversation, issued to this
  tenant for this very call, answered once: ``storage/mcp_approvals.py``) before it is
  added; approved, the call runs at once, an ``mcp_call`` item with its
  ``approval_request_id``, and the next response reads its output.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from ...backends.base import tenant
from ...errors import OpenAIError, answered, bad_request
from ...json.types import Json
from ...mcp.connector import McpFailure
from ..mcp.calls import approved_calls, content_text
from ..mcp.run import NOT_RUN, McpRun
from ..mcp.servers import TOOL, Catalog, McpServer, listing_failed, list_one, reuse, servers
from .events import Send, error_event, event_id, held_bytes, new_id, snapshot

if TYPE_CHECKING:
    from ..services import Services
    from .conversation_items import ConversationItems


class Session(Protocol):
    """What the MCP tools read of their session (conversation.py's ``ConversationSession``),
    named here so the session imports this module and not the other way round."""

    services: Services
    items: ConversationItems
    send: Send

    async def add(self, item: Json, previous: str | None = None, done: bool = True) -> None: ...


def checked_servers(services: Any, config: Json, tools_from: str, choice_from: str) -> list[McpServer]:
    """A configuration's ``mcp`` tools, checked as a Responses request's are (400s naming
    ``<tools_from>.tools[i]...``; nothing connected), and an ``mcp`` tool choice's server."""
    found = servers({"tools": config["tools"]}, services.mcp if _offers_mcp(config) else None, f"{tools_from}.")
    choice = config["tool_choice"]
    if isinstance(choice, dict) and choice.get("type") == TOOL and all(server.label != choice.get("server_label") for server in found):
        raise bad_request(
            f"Tool choice 'mcp' names the server_label '{choice.get('server_label')}', which is not in 'tools'.",
            f"{choice_from}.tool_choice.server_label",
            "invalid_value",
        )
    return found


def _offers_mcp(config: Json) -> bool:
    return any(isinstance(tool, dict) and tool.get("type") == TOOL for tool in config["tools"] or [])


def realtime_error(error: Json) -> Json:
    """A call's error as the Realtime document types it (``protocol_error``,
    ``tool_execution_error`` with a message, ``http_error``), from the Responses one."""
    kind = error.get("type")
    if kind == "mcp_protocol_error":
        return {"type": "protocol_error", "code": error.get("code", NOT_RUN), "message": error.get("message") or ""}
    if kind == "mcp_tool_execution_error":
        return {"type": "tool_execution_error", "message": content_text(error.get("content") or [])}
    return error


def not_run(item: Json, why: str) -> None:
    item.update(status="incomplete", error={"type": "protocol_error", "code": NOT_RUN, "message": f"Not run: {why}."})


class SessionMcp:
    """One session's MCP servers: their listings, the approvals issued, the approved calls
    running."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.listings: dict[str, asyncio.Task] = {}  # server label -> its listing under way
        self.failed: set[str] = set()  # mcp_list_tools items whose listing failed
        self.issued: dict[str, McpServer] = {}  # approval request id -> the server it asks about
        self.running: set[asyncio.Task] = set()  # approved calls

    @property
    def services(self) -> Any:
        return self.session.services

    # --- listing --------------------------------------------------------------------------

    def _listing_of(self, label: str) -> Json | None:
        for item in reversed(self.session.items.items):
            if item["type"] == "mcp_list_tools" and item["server_label"] == label and item["id"] not in self.failed:
                return item
        return None

    def list_soon(self, found: list[McpServer]) -> None:
        """Start listing the servers the conversation has not listed (``session.update``),
        each failure an ``error`` event."""
        for server in found:
            if server.label not in self.listings and self._listing_of(server.label) is None:
                self._start_listing(server, report=True)

    def _start_listing(self, server: McpServer, report: bool) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self._list(server, report), name="realtime mcp listing")
        self.listings[server.label] = task
        task.add_done_callback(lambda _: self.listings.pop(server.label, None) if self.listings.get(server.label) is task else None)
        return task

    async def _list(self, server: McpServer, report: bool) -> Json | OpenAIError:
        """List one server as the document's events say: its listing item, or the error
        (also sent as an ``error`` event when ``report``) - returned, for whichever response
        waits on it."""
        session = self.session
        item: Json = {"id": new_id("mcpl"), "type": "mcp_list_tools", "server_label": server.label, "tools": []}
        try:
            await session.add(item, done=False)
            await session.send({"type": "mcp_list_tools.in_progress", "event_id": event_id(), "item_id": item["id"]})
            try:
                item["tools"] = await list_one(self.services.mcp, server)
            except McpFailure as failure:
                self.failed.add(item["id"])
                await session.send({"type": "mcp_list_tools.failed", "event_id": event_id(), "item_id": item["id"]})
                await self._item_done(item)
                raise listing_failed(server, failure) from None
        except OpenAIError as error:  # the listing failed, or the conversation is full
            if report:
                await session.send(error_event(error))
            return error
        session.items.recount(item)
        await session.send({"type": "mcp_list_tools.completed", "event_id": event_id(), "item_id": item["id"]})
        await self._item_done(item)
        return item

    async def _item_done(self, item: Json) -> None:
        await self.session.send({"type": "conversation.item.done", "event_id": event_id(), "previous_item_id": None, "item": snapshot(item)})

    async def catalog(self, found: list[McpServer], functions: list[str]) -> Catalog:
        """The function names of ``found``, each server's tools from the conversation's
        listing of its label, or listed now (every server at once); the first failure
        raised (OpenAI's 424 naming the server's tool)."""
        waits = []
        for server in found:
            pending = self.listings.get(server.label)
            if pending is None and self._listing_of(server.label) is None:
                pending = self._start_listing(server, report=False)
            if pending is not None:
                waits.append(pending)
        for result in await asyncio.gather(*waits):
            if isinstance(result, OpenAIError):
                raise result
        for server in found:
            listing = self._listing_of(server.label)
            if listing is None:  # deleted by the client meanwhile
                raise bad_request(f"The tools of the MCP server '{server.label}' are not listed.", server.param, "invalid_value")
            reuse(server, listing)
        return Catalog(found, functions)

    # --- calls and approvals --------------------------------------------------------------

    def run_of(self, catalog: Catalog, response_id: str) -> McpRun:
        """What a response's calls go through (``serving/mcp/run.McpRun``)."""
        return McpRun(self.services, tenant.get(), response_id, catalog, [], self.services.settings.mcp_max_calls)

    async def issue(self, run: McpRun, request: Json) -> None:
        """Record an approval request before the client sees it whole."""
        await run.issue([request])
        self.issued[request["id"]] = run.catalog.servers[request["server_label"]]

    async def run(self, run: McpRun, item: Json) -> None:
        """Run one ``mcp_call`` item: its output (if the conversation has room for it) or its
        error, typed as the Realtime document types it."""
        await run.run(item)
        items = self.session.items
        if item.get("output") is not None and held_bytes(item["output"]) > items.max_bytes - items.bytes:
            size = held_bytes(item["output"])
            message = (f"The tool's output takes {size} bytes here; the conversation has room for "
                       f"{max(items.max_bytes - items.bytes, 0)} more (realtime_conversation_bytes).")
            item.update(status="failed", output=None, error={"type": "protocol_error", "code": NOT_RUN, "message": message})
        if item.get("error") is not None:
            item["error"] = realtime_error(item["error"])
        items.recount(item)

    async def answer(self, item: Json, previous: str | None) -> None:
        """The client's ``mcp_approval_response``: checked and answered once, then added;
        an approved call runs at once, beside the session's events."""
        request_id = item.get("approval_request_id")
        server = self.issued.get(request_id) if isinstance(request_id, str) else None
        found = next((known for known in self.session.items if known["type"] == "mcp_approval_request" and known["id"] == request_id), None)
        if server is None or found is None:
            raise bad_request(
                f"No MCP approval request with id '{request_id}' was found in this conversation.",
                "item.approval_request_id",
                "invalid_value",
            )
        self.session.items.check(item)  # room for it, before the approval is spent
        calls = await approved_calls(
            self.services, tenant.get(), [server], list(self.session.items), [item], lambda _: "item.approval_request_id"
        )
        await self.session.add(item, previous)
        for call in calls:
            task = asyncio.get_running_loop().create_task(self._run_approved(server, call), name="realtime mcp call")
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _run_approved(self, server: McpServer, item: Json) -> None:
        session = self.session
        where = {"item_id": item["id"], "output_index": 0}  # no response holds it
        try:
            await session.add(item, done=False)
            await session.send({"type": "response.mcp_call.in_progress", "event_id": event_id(), **where})
            await self.run(McpRun(self.services, tenant.get(), "", Catalog([server], []), [], 1), item)
            ended = "response.mcp_call.completed" if item["status"] == "completed" else "response.mcp_call.failed"
            await session.send({"type": ended, "event_id": event_id(), **where})
            await self._item_done(item)
        except Exception as exc:  # the conversation full; anything else logged by answered()
            await session.send(error_event(answered(exc)))

    async def idle(self) -> None:
        """Wait for the approved calls running: the next answer reads their outputs."""
        while self.running:
            await asyncio.wait(set(self.running))

    async def close(self) -> None:
        tasks = [*self.listings.values(), *self.running]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.listings.clear()
        self.issued.clear()
