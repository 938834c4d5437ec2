"""The ``mcp`` tool served, for Responses and Realtime alike (docs/RESPONSES.md, docs/REALTIME.md):
``servers`` (the request's tools checked, each server listed once per conversation, its
tools offered to the model as functions: ``Catalog``), ``calls`` (the MCP items of a
conversation: calls, approvals, and what the model reads of them), ``run`` (one response's
calls run and the model asked again). Over the client of ``llm_backend/mcp/``; Realtime's
session-side use is ``serving/realtime/mcp_tools.py``."""
