"""Upstream APIs (rank 1): models served by an OpenAI-compatible API (OpenAI, vLLM, another
gateway), answered by relaying it (docs/UPSTREAM.md). Loaded only when an upstream is
configured: a local-only service never imports an HTTP client for them.

- ``backend.py``: ``UpstreamApi``, what every upstream has (its client, its models and their
  list), and ``UpstreamBackend``, OpenAI's API on it: chat, completions and embeddings relayed
  through its methods, any other operation forwarded verbatim; with ``responses: local`` the
  Responses API is served here over its chat.
- ``http_client.py``: one client per upstream (aiohttp): pooled keep-alive connections,
  timeouts, retries only before anything was relayed; ``retry_after.py``: what the client's
  retries and a pool's cool-down read of a ``Retry-After``.
- ``headers.py``: what of a client's headers an upstream is sent, and what of its answer's
  the client gets: one allow-list each way, for every lane (``OpenAI-Organization`` and
  ``-Project`` are the operator's beside the service's key, never a client's).
- ``relay.py``: an upstream's answer as a ``Relayed``: its status, the headers allowed back,
  the body unparsed (but the model id of our aliases, and event streams' line ends framed as
  OpenAI's); ``event_frames.py``: a stream cut at its events' ends, each within
  ``upstream_max_read_bytes``, for the relay and every reader after it; ``renaming.py``: our
  alias in place of the upstream's model id, in place where the answer's shape allows.
- ``stream_usage.py``: every relayed stream asks for its usage, so it is metered; the client
  sees it only if it asked.
- ``answers.py``: an upstream's chat answer read as OpenAI objects, for serving code that
  builds its own answer on it (the Responses API served here).
- ``prompt_cache.py``: ``isolate_prompt_cache``: a tenant's own ``cache_salt`` (vLLM: a
  boundary) or ``prompt_cache_key`` (OpenAI: a routing key) on the upstream.

An upstream of another API is a family's, registered as an upstream kind
(``Family.upstreams``): ``api: anthropic`` is ``families/messages/backend.py``.
"""
