"""The HTTP middleware (``http/middleware.py``), driven as ASGI apps around a small inner app."""

from __future__ import annotations

import asyncio
import json

from llm_backend.http import context
from llm_backend.http.body import read_body
from llm_backend.http.middleware import BodyLimit, CancelOnDisconnect, RequestContext


class Inner:
    """Answers 200 with the body it read and the content-length it saw; or waits forever."""

    def __init__(self, wait: bool = False) -> None:
        self.wait = wait
        self.cancelled = False
        self.seen_scope = None

    async def __call__(self, scope, receive, send) -> None:
        self.seen_scope = scope
        body, _ = await read_body(receive)
        if self.wait:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        length = dict(scope["headers"]).get(b"content-length", b"")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-length", length)]})
        await send({"type": "http.response.body", "body": body})


async def call(app, messages: list[dict], headers: list | None = None, then_disconnect: bool = True, path: str = "/v1/x"):
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers or [], "query_string": b""}
    pending = list(messages)
    sent = []

    async def receive():
        if pending:
            return pending.pop(0)
        if then_disconnect:
            await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


def body_of(sent) -> bytes:
    return b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")


async def test_every_answer_carries_a_request_id():
    sent = await call(RequestContext(Inner()), [{"type": "http.request", "body": b"x"}], then_disconnect=False)
    headers = dict(sent[0]["headers"])
    assert headers[b"x-request-id"].startswith(b"req_")


async def test_the_request_context_is_open_for_the_inner_app():
    seen = {}

    async def inner(scope, receive, send):
        seen["scope"] = context.scope()
        seen["owner"] = context.current_owner()
        await Inner()(scope, receive, send)

    await call(RequestContext(inner), [{"type": "http.request", "body": b""}], then_disconnect=False)
    assert seen["scope"]["path"] == "/v1/x" and seen["owner"] == "anonymous"


async def test_a_declared_length_over_the_limit_is_413_without_reading_the_body():
    inner = Inner()
    sent = await call(BodyLimit(inner, max_bytes=10), [], headers=[(b"content-length", b"11")])
    assert sent[0]["status"] == 413 and inner.seen_scope is None
    assert json.loads(body_of(sent))["error"]["code"] == "request_too_large"


async def test_a_chunked_body_over_the_limit_is_413():
    chunks = [{"type": "http.request", "body": b"12345", "more_body": True}] * 3
    sent = await call(BodyLimit(Inner(), max_bytes=10), chunks, headers=[(b"transfer-encoding", b"chunked")])
    assert sent[0]["status"] == 413


async def test_a_chunked_body_within_the_limit_reaches_the_app_whole_with_its_length():
    chunks = [
        {"type": "http.request", "body": b"123", "more_body": True},
        {"type": "http.request", "body": b"456", "more_body": False},
    ]
    sent = await call(BodyLimit(Inner(), max_bytes=10), chunks, headers=[(b"transfer-encoding", b"chunked")])
    assert sent[0]["status"] == 200 and body_of(sent) == b"123456"
    assert dict(sent[0]["headers"])[b"x-length"] == b"6"


def uploads(inner, max_bytes: int = 10, upload_bytes: int = 100) -> BodyLimit:
    return BodyLimit(inner, max_bytes=max_bytes, path_limits={"/v1/files": upload_bytes})


async def test_an_upload_has_its_own_larger_limit():
    inner = Inner()
    sent = await call(uploads(inner), [{"type": "http.request", "body": b"x" * 50}], headers=[(b"content-length", b"50")], path="/v1/files")
    assert sent[0]["status"] == 200
    refused = await call(uploads(Inner()), [], headers=[(b"content-length", b"101")], path="/v1/files")
    assert refused[0]["status"] == 413 and "100 bytes" in json.loads(body_of(refused))["error"]["message"]


async def test_an_upload_part_has_the_upload_limit_by_its_path_template():
    limit = BodyLimit(Inner(), max_bytes=10, path_limits={"/v1/uploads/{upload_id}/parts": 100})
    sent = await call(limit, [{"type": "http.request", "body": b"x" * 50}], headers=[(b"content-length", b"50")], path="/v1/uploads/upload_1/parts")
    assert sent[0]["status"] == 200
    for other in ("/v1/uploads/upload_1", "/v1/uploads//parts", "/v1/uploads/a/b/parts"):
        refused = await call(limit, [], headers=[(b"content-length", b"50")], path=other)
        assert refused[0]["status"] == 413, other


async def test_the_upload_limit_applies_to_uploads_only():
    sent = await call(uploads(Inner()), [], headers=[(b"content-length", b"50")], path="/v1/chat/completions")
    assert sent[0]["status"] == 413


async def test_a_chunked_upload_is_spooled_and_replayed_whole_with_its_length():
    chunks = [{"type": "http.request", "body": bytes([65 + i]) * 20, "more_body": i < 3} for i in range(4)]
    sent = await call(uploads(Inner()), chunks, headers=[(b"transfer-encoding", b"chunked")], path="/v1/files")
    assert sent[0]["status"] == 200 and body_of(sent) == b"A" * 20 + b"B" * 20 + b"C" * 20 + b"D" * 20
    assert dict(sent[0]["headers"])[b"x-length"] == b"80"


async def test_a_chunked_upload_over_its_limit_is_413():
    chunks = [{"type": "http.request", "body": b"x" * 40, "more_body": True}] * 3
    sent = await call(uploads(Inner()), chunks, headers=[(b"transfer-encoding", b"chunked")], path="/v1/files")
    assert sent[0]["status"] == 413


async def test_a_client_that_hangs_up_before_the_answer_cancels_the_work():
    inner = Inner(wait=True)
    sent = await asyncio.wait_for(call(CancelOnDisconnect(inner), [{"type": "http.request", "body": b"x"}]), 5)
    assert inner.cancelled and sent == []


async def test_a_client_gone_is_logged_as_499(caplog):
    app = RequestContext(CancelOnDisconnect(Inner(wait=True)))
    with caplog.at_level("INFO", logger="llm_backend.access"):
        await asyncio.wait_for(call(app, [{"type": "http.request", "body": b"x"}]), 5)
    assert [record.status for record in caplog.records if record.name == "llm_backend.access"] == [499]
