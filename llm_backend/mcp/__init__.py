"""A client of remote MCP servers (the Model Context Protocol) for the ``mcp`` tool of the
Responses and Realtime APIs (rank 1). Backend-independent and framework-free:
``serving/mcp/`` turns what it finds into items, ``serving/realtime/mcp_tools.py`` into a
Realtime session's.

- ``egress.py``: which servers may be reached (``mcp_allowed_servers``, else public addresses
  only, checked after DNS; closed when unsure: docs/SECURITY.md).
- ``transport.py``: the HTTP client every connection goes through: each request's URL and
  address checked (redirects too), the bytes and JSON values of every answer counted
  (``values.py``: as the bytes arrive, without parsing them).
- ``connector.py``: listing and calling the tools of one server, with the ``mcp`` package's
  client, over streamable HTTP or SSE, within a time budget, its failures typed as the
  OpenAI document types them.
- ``beside.py``: the thread, with an event loop of its own, every connection runs on: the
  package parses each answer where it reads it, holding the GIL, never on the service's loop.
"""
