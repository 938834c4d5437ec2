"""What of a client's headers an upstream is sent, and what of an upstream's answer's headers
the client gets: one rule, here, for every lane that talks to an upstream. Every one sends
through ``UpstreamClient`` and relays through ``relay.py`` (chat completions, completions,
embeddings and models relayed; any operation forwarded verbatim, Files and Uploads among
them, through ``http/forwarding.py``; an Anthropic upstream's Messages; the Responses API
served here over an upstream's chat, by HTTP or WebSocket; batch lines), so each applies this.

The operator decides, not the client (issue #56 item 3):

- **To the upstream**: what says how to read and answer the request (``accept``,
  ``content-type``, ``OpenAI-Beta``, ``Idempotency-Key``; Anthropic's ``anthropic-version``
  and ``anthropic-beta``), the trace context, and the key. ``OpenAI-Organization`` and
  ``OpenAI-Project`` pick which of a key's organisations and projects a request is billed
  to, limited by and stored in: beside the service's own key they are the operator's to
  pick (``headers:``), never a client's, which would spend from, and read the files of,
  any project of the operator's account it could name. They go only with the client's own
  key (``upstream_pass_client_key``), whose organisations they are then. A header
  configured for the upstream (``headers:``) replaces every header of its name, the
  client's or the key, never goes beside it (an upstream that reads the first of two would
  read the client's).
- **Back to the client**: an allow-list. The body's own headers (type, coding: the body is
  relayed undecoded, and its caching), how to retry (``retry-after``, OpenAI's
  ``retry-after-ms``, the SDKs' ``x-should-retry``), the upstream's request id under a name
  of its own (``x-upstream-request-id``; Anthropic's ``request-id`` as
  ``upstream-request-id``: the unprefixed names are this service's ids). Rate-limit headers
  (``x-ratelimit-*``, ``anthropic-ratelimit-*``) describe the key they were asked with: the
  client's own with ``upstream_pass_client_key``, relayed then; otherwise the account every
  tenant shares, its limits and what the other tenants left of them, not relayed (a limited
  key gets this service's own ``x-ratelimit-*``: ``http/key_limits.py``). Everything else
  stays: who the operator is (``openai-organization``/``-project``,
  ``anthropic-organization-id``), the upstream's hosting (``cf-ray``, ``server``,
  ``set-cookie``, ``alt-svc``), its timings.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...settings import UpstreamConfig
from ..base import trace_headers

Headers = list[tuple[bytes, bytes]]

# The client's headers an OpenAI-compatible upstream is sent; everything else (cookies,
# hosts, our own key) stays.
OPENAI_HEADERS = frozenset(
    {
        b"accept",
        b"content-type",
        b"openai-beta",
        b"idempotency-key",
        # W3C trace context: the client's, or this service's span when tracing is on.
        b"traceparent",
        b"tracestate",
    }
)
# What an Anthropic upstream (``api: anthropic``) is sent of the client's: its API version
# and betas instead of OpenAI's headers; its key goes as ``x-api-key``.
ANTHROPIC_HEADERS = frozenset(
    {b"accept", b"content-type", b"anthropic-version", b"anthropic-beta", b"traceparent", b"tracestate"}
)
# Which of a key's organisations and projects a request is for: only with the client's own key.
ACCOUNT_HEADERS = frozenset({b"openai-organization", b"openai-project"})
TRACE_HEADERS = (b"traceparent", b"tracestate")

# An answer's headers a client gets: its body's, and when to retry.
ANSWER_HEADERS = frozenset(
    {
        b"content-type",
        b"content-encoding",
        b"content-disposition",
        b"cache-control",
        b"retry-after",
        b"retry-after-ms",
        b"x-should-retry",
    }
)
# The limits of the key the upstream was asked with: relayed when it is the client's own.
LIMIT_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
# The upstream's request id (its API's name for it) -> the name the client sees it under.
REQUEST_IDS = {"openai": (b"x-request-id", b"x-upstream-request-id"), "anthropic": (b"request-id", b"upstream-request-id")}


class UpstreamHeaders:
    """The headers of one upstream's requests and answers (its API, its key, its ``headers:``)."""

    def __init__(self, config: UpstreamConfig, pass_client_key: bool) -> None:
        anthropic = config.api == "anthropic"
        self.pass_client_key = pass_client_key
        forwarded = ANTHROPIC_HEADERS if anthropic else OPENAI_HEADERS
        self.forwarded = forwarded | ACCOUNT_HEADERS if pass_client_key and not anthropic else forwarded
        # The client's own key, sent on only with ``upstream_pass_client_key``.
        self.client_keys = (b"authorization", b"x-api-key") if anthropic else (b"authorization",)
        key = config.key
        self._auth = [(b"x-api-key", key.encode()) if anthropic else (b"authorization", f"Bearer {key}".encode())] if key else []
        self._configured = [(name.lower().encode(), value.encode()) for name, value in config.headers.items()]
        self._replaced = frozenset(name for name, _ in self._configured)
        self._limits = LIMIT_PREFIXES if pass_client_key else ()
        self._request_id, self._request_id_as = REQUEST_IDS[config.api]

    def request(self, incoming: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        """The headers for the upstream: the client's relevant ones, the key (the service's,
        or the client's own when configured so), the configured ones in place of any of
        their names, the trace; and an uncompressed answer asked for, whatever the client
        accepts: every answer relayed here is read (metered, renamed, stored, guarded), and a
        compressed one was read as nothing - the OpenAI SDKs' default ``Accept-Encoding:
        gzip``, passed on, got a gzipped chat completion that counted no tokens against any
        limit, spend or usage (``http_client.py`` refuses one sent anyway)."""
        headers: Headers = []
        client_keys: Headers = []
        for name, value in incoming:
            if name in self.client_keys:
                client_keys.append((name, value))
            elif name in self.forwarded:
                headers.append((name, value))
        headers.append((b"accept-encoding", b"identity"))  # aiohttp would ask for gzip otherwise
        headers.extend(client_keys if self.pass_client_key else self._auth)
        if self._configured:
            headers = [header for header in headers if header[0] not in self._replaced] + self._configured
        traced = trace_headers.get()  # this request's span (http/tracing.py): the client's trace, one hop on
        if traced:
            headers = [header for header in headers if header[0] not in TRACE_HEADERS] + traced
        return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]

    def answer(self, received: Iterable[tuple[bytes, bytes]]) -> Headers:
        """The headers of an upstream's answer the client sees (the allow-list above)."""
        headers: Headers = []
        for name, value in received:
            name = name.lower()
            if name in ANSWER_HEADERS or (self._limits and name.startswith(self._limits)):
                headers.append((name, value))
            elif name == self._request_id:
                headers.append((self._request_id_as, value))
        return headers
