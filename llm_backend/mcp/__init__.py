"""A client of remote MCP servers (the Model Context Protocol) for the ``mcp`` tool of the
Responses and Realtime APIs: which servers may be reached (``egress.py``), the HTTP client
every connection goes through (``transport.py``: the address checked at each connection,
the bytes and JSON values of every answer counted, ``values.py``), and listing and calling
tools on one server (``connector.py``: the ``mcp`` package's client, over streamable HTTP or
SSE, within a time budget, its failures typed as the OpenAI document types them), on a
thread beside the event loop (``beside.py``).

Backend-independent and framework-free: ``serving/mcp/`` turns what it
finds into items, and ``serving/realtime/mcp_tools.py`` into a Realtime session's.
"""
