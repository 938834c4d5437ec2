"""One HTTP client per upstream: pooled keep-alive connections, timeouts, and retries that
happen only before anything was relayed to the client."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Iterable

import httpx

from ...errors import upstream_timeout, upstream_unreachable
from ...settings import Settings, UpstreamConfig

log = logging.getLogger(__name__)

# Worth another try: the upstream said so, or was briefly unable to answer.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# Client headers an upstream should see; everything else (cookies, hosts, our own key) stays.
FORWARDED_HEADERS = frozenset(
    {
        b"accept",
        b"accept-encoding",
        b"content-type",
        b"openai-organization",
        b"openai-project",
        b"openai-beta",
        b"idempotency-key",
    }
)
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the upstream asks us to wait: ``retry-after-ms`` (OpenAI's), or ``retry-after``
    in seconds or as an HTTP date."""
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter, so that retrying clients do not stampede together."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt) * random.uniform(0.75, 1.0)


class UpstreamClient:
    """Sends requests to one upstream API. Created once per app: the connection pool is what
    keeps the proxy's added latency small."""

    def __init__(self, config: UpstreamConfig, settings: Settings) -> None:
        self.name = config.name
        self.base_url = config.base_url.rstrip("/")
        self.timeout = settings.upstream_timeout
        self.max_retries = settings.upstream_max_retries
        self.retry_budget = settings.upstream_retry_budget
        self.pass_client_key = settings.upstream_pass_client_key
        key = config.key
        self._auth = [(b"authorization", f"Bearer {key}".encode())] if key else []
        self._extra = [(name.lower().encode(), value.encode()) for name, value in config.headers.items()]
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout, connect=settings.upstream_connect_timeout),
            limits=httpx.Limits(
                max_connections=settings.upstream_max_connections,
                max_keepalive_connections=settings.upstream_max_connections,
                keepalive_expiry=60,
            ),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def headers(self, incoming: Iterable[tuple[bytes, bytes]], *, identity: bool = False) -> list[tuple[bytes, bytes]]:
        """The headers for the upstream: the client's relevant ones, then the key (the
        service's, or the client's own when configured so) and the configured extras.
        ``identity`` asks for an uncompressed body (we need to read it)."""
        headers = []
        authorization = None
        encoding = b"identity"
        for name, value in incoming:
            if name == b"authorization":
                authorization = value
            elif name == b"accept-encoding":
                encoding = value
            elif name in FORWARDED_HEADERS:
                headers.append((name, value))
        # Without this, httpx would ask for gzip on behalf of a client that did not.
        headers.append((b"accept-encoding", b"identity" if identity else encoding))
        if self.pass_client_key:
            if authorization is not None:
                headers.append((b"authorization", authorization))
        else:
            headers.extend(self._auth)
        headers.extend(self._extra)
        return headers

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: list[tuple[bytes, bytes]],
        content: bytes | None = None,
        query: bytes = b"",
    ) -> httpx.Response:
        """Send a request; return once the upstream's status and headers are in (the body is
        left to stream). Connection failures, 429 and 5xx are retried with backoff, honouring
        ``retry-after``, within the retry count and time budget; then the last answer is
        returned as it is, or a failure to connect is 502 and a timeout 504."""
        url = self.base_url + path
        if query:
            url += "?" + query.decode("latin-1")
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        while True:
            request = self._http.build_request(method, url, headers=headers, content=content)
            wait: float | None = None
            try:
                response = await self._http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                # Nothing reached the upstream's application (or it closed on us at once).
                log.warning("upstream %s: %s (attempt %d)", self.name, type(exc).__name__, attempt + 1)
                failure = upstream_unreachable(self.name)
                if isinstance(exc, httpx.ConnectTimeout):
                    failure = upstream_timeout(self.name, self._http.timeout.connect or 0)
            except httpx.TimeoutException as exc:
                # The request may be running upstream: not retried, it could run twice.
                log.warning("upstream %s: %s", self.name, type(exc).__name__)
                raise upstream_timeout(self.name, self.timeout) from None
            except httpx.TransportError as exc:
                log.warning("upstream %s: %s", self.name, type(exc).__name__)
                raise upstream_unreachable(self.name) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                wait = retry_after(response)
                failure = None
                log.warning("upstream %s: status %d (attempt %d)", self.name, response.status_code, attempt + 1)
            wait = backoff(attempt) if wait is None else wait
            if attempt >= self.max_retries or time.monotonic() + wait > deadline:
                if failure is not None:
                    raise failure from None
                return response
            if failure is None:
                await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1
