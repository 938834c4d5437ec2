"""The HTTP client of every MCP connection: each request's URL checked by the settings'
``ServerPolicy`` (redirects included: the ``mcp`` package follows one only within the
server's origin, and it is checked here like any request), connections to public URLs
made by ``egress.PublicOnlyBackend``, and every byte of every answer counted against the
operation's budget (``Exchange``), compressed answers refused (a small body must not
expand past the count). No proxy from the environment: it would connect in our stead.

The JSON values of the answers are counted too, as their bytes arrive and before the ``mcp``
package parses them (``values.py``): what parsing and validating an answer costs follows its
values, not its bytes (4 MB of one string: 2 ms; 2 MB of 60,000 small content parts: 0.7 s).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from typing import cast

import httpcore2
import httpx2

from .egress import PublicOnlyBackend, Refused, ServerPolicy
from .values import ValueCount


class TooLarge(Exception):
    pass


class Exchange:
    """What one listing or call went through: bytes and JSON values read, the last HTTP
    error status, the refusal that stopped it (the ``mcp`` package folds these into its own
    errors)."""

    def __init__(self, max_bytes: int, max_values: int) -> None:
        self.max_bytes = max_bytes
        self.max_values = max_values
        self.read = 0
        self.values = 0
        self.status: int | None = None
        self.refused: str | None = None
        self.too_large = False
        self.budget = ""  # the setting a refusal was over

    def count(self, chunk: bytes, values: ValueCount) -> None:
        self.read += len(chunk)
        if self.read > self.max_bytes:
            self._over(f"the MCP server's answers passed {self.max_bytes} bytes", "mcp_max_bytes")
        self.values += values.feed(chunk, self.max_values - self.values)
        if self.values > self.max_values:
            self._over(f"the MCP server's answers held more than {self.max_values} JSON values", "mcp_max_values")

    def _over(self, message: str, budget: str) -> None:
        self.too_large, self.budget = True, budget
        raise TooLarge(message)


class _Counted(httpx2.AsyncByteStream):
    def __init__(self, stream: httpx2.AsyncByteStream, exchange: Exchange) -> None:
        self.stream = stream
        self.exchange = exchange
        self.values = ValueCount()  # each answer's own: a string never runs on into the next

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.exchange.count(chunk, self.values)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One for every connection: loading the CA bundle takes 20 ms of the GIL each time."""
    return httpx2.create_ssl_context()


def _transport(public: bool) -> httpx2.AsyncHTTPTransport:
    transport = httpx2.AsyncHTTPTransport(trust_env=False, verify=_ssl_context())
    if public:
        # httpx2 takes no network backend: its pool is replaced by one made the same way
        # around the backend that checks every address it connects to.
        transport._pool = httpcore2.AsyncConnectionPool(ssl_context=_ssl_context(), network_backend=PublicOnlyBackend())
    return transport


class GuardedTransport(httpx2.AsyncBaseTransport):
    """``origin``: an SSE server's listed origin, whose message endpoint (a path the server
    names, on its own origin: the ``mcp`` package refuses another) is part of the server."""

    def __init__(self, policy: ServerPolicy, exchange: Exchange, origin: str | None = None) -> None:
        self.policy = policy
        self.exchange = exchange
        self.origin = origin
        self.transports = {"listed": _transport(False), "public": _transport(True)}

    def _route(self, url: httpx2.URL) -> str:
        if self.origin is not None and str(url.copy_with(path="/", query=None, fragment=None)) == self.origin:
            return "listed"
        return self.policy.route(str(url))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            route = self._route(request.url)
            response = await self.transports[route].handle_async_request(request)
        except Refused as refused:
            self.exchange.refused = str(refused)
            raise
        if response.status_code >= 400:
            self.exchange.status = response.status_code
        location = response.headers.get("location")
        if 300 <= response.status_code < 400 and location:
            # Judged here whether or not it will be followed (the mcp package follows only
            # same-origin ones): a redirect somewhere refused is a refusal, not an error.
            try:
                self._route(request.url.join(location))
            except Refused as refused:
                await response.aclose()
                self.exchange.refused = f"it redirects: {refused}"
                raise
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            await response.aclose()
            self.exchange.status = 502
            raise TooLarge("the MCP server sent a compressed answer, which this service does not read")
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            # An async transport's answer: its stream is an AsyncByteStream by construction.
            stream=_Counted(cast(httpx2.AsyncByteStream, response.stream), self.exchange),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for transport in self.transports.values():
            await transport.aclose()


def origin(url: str) -> str:
    return str(httpx2.URL(url).copy_with(path="/", query=None, fragment=None))


def http_client(
    policy: ServerPolicy,
    exchange: Exchange,
    timeout: float,
    headers: dict[str, str] | None = None,
    sse_origin: str | None = None,
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=GuardedTransport(policy, exchange, sse_origin),
        headers={**(headers or {}), "Accept-Encoding": "identity"},
        timeout=httpx2.Timeout(timeout),
        trust_env=False,
        follow_redirects=False,
    )
