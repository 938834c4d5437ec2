"""A client of remote MCP servers (the Model Context Protocol) for the Responses API's
``mcp`` tool: which servers may be reached (``egress.py``), the HTTP client every
connection goes through (``transport.py``: the address checked at each connection, the
bytes of every answer counted), and listing and calling tools on one server
(``client.py``: the ``mcp`` package's client, over streamable HTTP or SSE, within a
time budget, its failures typed as the OpenAI document types them).

Backend-independent and framework-free: ``serving/responses/mcp_*.py`` turn what it
finds into output items.
"""
