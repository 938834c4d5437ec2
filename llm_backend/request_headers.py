"""The headers of the request being served, for layers below HTTP: an upstream API is sent
the client's ``OpenAI-*`` headers (and its key, when configured so). Set by
``middleware.RequestContext`` for every request, whichever way it is then served."""

from __future__ import annotations

from contextvars import ContextVar

incoming: ContextVar[list[tuple[bytes, bytes]]] = ContextVar("incoming_headers", default=[])
