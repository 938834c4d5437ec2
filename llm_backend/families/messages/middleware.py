"""Anthropic's errors for Anthropic's clients: every failure of a request to the Messages
API's paths, or of any request that says it speaks Anthropic's API (an
``anthropic-version`` header: its SDKs and Claude Code send one with every request), is
answered ``{"type": "error", "error": {"type", "message"}}`` with a ``request-id`` header,
whichever layer refused it: the edge (a foreign Host), the key (401), the limits (429), the
body's size or schema (413, 400), the model (404) or the answer (500).

One place does it, outside every other layer (``Family.middleware``: the app adds it
first): an error body is built in OpenAI's shape by the one renderer
(``http/rendering.error_response``) and turned into Anthropic's here, its status kept (the
error type follows it, ``errors.py``); one in Anthropic's shape already (an Anthropic
upstream's error, relayed) passes as it came. Errors are small and whole; answers that are not errors
pass through untouched, a stream's failures being Anthropic's ``error`` events already
(``serving/answer.py``).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_backend.http.middleware import HttpMiddleware

from .errors import body as anthropic_body

PATH = "/v1/messages"


def speaks_anthropic(scope: Scope) -> bool:
    path = scope.get("path", "")
    if path == PATH or path.startswith(PATH + "/"):
        return True
    return any(name == b"anthropic-version" for name, _ in scope.get("headers", ()))


def _translated(status: int, content: bytes) -> bytes:
    try:
        answer = json.loads(content)  # an error body: small and whole
        error = answer.get("error")
    except (ValueError, AttributeError):
        answer = error = None
    if isinstance(answer, dict) and answer.get("type") == "error" and isinstance(error, dict) and isinstance(error.get("type"), str):
        return content  # Anthropic's already (an Anthropic upstream's, relayed): as it came
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):
        message = content.decode("utf-8", "replace") or "error"
    return json.dumps(anthropic_body(status, message), ensure_ascii=False).encode()


class AnthropicErrors(HttpMiddleware):
    """See the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not speaks_anthropic(scope):
            await self.app(scope, receive, send)
            return
        held: dict = {}
        chunks: list[bytes] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                request_id = next((value for name, value in headers if name.lower() == b"x-request-id"), None)
                if request_id is not None:
                    headers.append((b"request-id", request_id))
                content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                message = {**message, "headers": headers}
                if message["status"] >= 400 and content_type.startswith(b"application/json"):
                    held["start"] = message  # sent with the translated body
                    return
                await send(message)
            elif message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                start = held.pop("start")
                content = _translated(start["status"], b"".join(chunks))
                headers = [(name, value) for name, value in start["headers"] if name.lower() != b"content-length"]
                headers.append((b"content-length", str(len(content)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": content})
            else:
                await send(message)

        await self.app(scope, receive, sending)
