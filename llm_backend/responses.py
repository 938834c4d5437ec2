"""Turn what a backend answered into an HTTP response."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from .backends.base import Answer
from .sse import event_stream


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type="application/json")


def answer_response(answer: Answer) -> Response:
    """A JSON object, or a server-sent event stream of chunks."""
    if isinstance(answer, dict):
        return json_response(answer)
    return event_stream(answer)
