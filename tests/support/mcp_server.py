"""A real MCP server for the tests: the ``mcp`` package's ``MCPServer`` on loopback (uvicorn
in a thread of the test process), so a test reads how often each tool really ran.

Two tools: ``secret_word`` (annotated read-only) and ``save_note`` (writes). Over streamable
HTTP at ``/mcp`` and SSE at ``/sse``; beside them, plain routes a test points a server URL
at: ``/broken`` (HTTP 500), ``/redirect`` (a 307 to ``/elsewhere``, or to its ``to``), and every
request's path is counted (``hits``), so a test can show a request never arrived. A second
server at ``/hostile`` has one tool, ``report``, whose answer is ``report_parts`` text parts
(an answer sized by its values, not its bytes).

``mcp`` is the fixture a test module imports: one server for the module.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import TextContent, ToolAnnotations
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Route

SECRET = "PINEAPPLE-42"


class TestMcpServer:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.hits: collections.Counter[str] = collections.Counter()
        self.headers: list[dict[str, str]] = []
        self.failing = False
        server = MCPServer("llm-backend tests")

        @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
        def secret_word(topic: str) -> str:
            """Tell the secret word of a topic."""
            self.calls["secret_word"] += 1
            if self.failing:
                raise ValueError("the secret store is closed")
            return f"The secret word is {SECRET}."

        @server.tool(annotations=ToolAnnotations(readOnlyHint=False))
        def save_note(text: str) -> str:
            """Save a note."""
            self.calls["save_note"] += 1
            return f"Saved note number {self.calls['save_note']}."

        self.report_parts = 1
        hostile = MCPServer("llm-backend tests: hostile answers")

        @hostile.tool(structured_output=False)
        def report(topic: str) -> list[TextContent]:
            """Write a report about a topic."""
            self.calls["report"] += 1
            return [TextContent(type="text", text="ab")] * self.report_parts

        streamable = server.streamable_http_app()
        sse = server.sse_app()
        hostile_app = hostile.streamable_http_app(streamable_http_path="/hostile")

        @contextlib.asynccontextmanager
        async def lifespan(app):
            async with streamable.router.lifespan_context(app), hostile_app.router.lifespan_context(app):
                yield

        async def broken(request):
            return PlainTextResponse("broken", status_code=500)

        async def redirect(request):
            return RedirectResponse(request.query_params.get("to", "/elsewhere"), status_code=307)

        async def elsewhere(request):
            return PlainTextResponse("you should not be here", status_code=404)

        plain = [
            Route("/broken", broken, methods=["GET", "POST", "DELETE"]),
            Route("/redirect", redirect, methods=["GET", "POST", "DELETE"]),
            Route("/elsewhere", elsewhere, methods=["GET", "POST", "DELETE"]),
        ]
        app = Starlette(routes=[*streamable.routes, *hostile_app.routes, *sse.routes, *plain], lifespan=lifespan)

        async def counted(scope, receive, send):
            if scope["type"] == "http":
                self.hits[scope["path"]] += 1
                self.headers.append({key.decode(): value.decode() for key, value in scope["headers"]})
            await app(scope, receive, send)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(counted, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def url(self, path: str = "/mcp") -> str:
        return self.base_url + path

    def start(self) -> "TestMcpServer":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test MCP server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture(scope="module")
def mcp():
    server = TestMcpServer().start()
    yield server
    server.stop()


@contextlib.contextmanager
def listening_socket():
    """A loopback socket that listens and is never accepted from: whether anything
    connected to it shows in ``connected()``."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)

        def connected() -> bool:
            try:
                connection, _ = listener.accept()
            except BlockingIOError:
                return False
            connection.close()
            return True

        yield listener.getsockname()[1], connected
