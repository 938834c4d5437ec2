"""Loopback servers for upstream faults that a real upstream cannot produce on demand.

Only for those faults: everything else is tested against a real upstream (another instance
of this service). Each runs in a thread and is stopped by its context manager.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from tests.support.loopback import LoopbackApp


class HangingUpstream:
    """Accepts connections and never answers: an upstream that hangs."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self._sock.accept()
            except OSError:
                continue
            self.connections.append(connection)  # kept open, never read or answered

    def __enter__(self) -> "HangingUpstream":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self.connections:
            connection.close()
        self._sock.close()


CHAT_COMPLETION = {
    "id": "chatcmpl-fake",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "flaky-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop", "logprobs": None}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class ThreadedUpstream:
    """A loopback HTTP server of ``handler``'s, in a thread of its own, started and stopped
    by its context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class RateLimitedUpstream(ThreadedUpstream):
    """Answers the first ``limited`` requests with 429 and ``retry-after``, then 200 with
    OpenAI's ``x-ratelimit-*`` headers (and ``set-cookie`` when given a cookie, as a CDN in
    front of an API does); records when each request arrived and its headers."""

    def __init__(self) -> None:
        self.reset()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                fake.arrivals.append(time.monotonic())
                fake.headers.append({name.lower(): value for name, value in self.headers.items()})
                if len(fake.arrivals) <= fake.limited:
                    status, headers = 429, {"retry-after": fake.retry_after}
                    body = {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
                else:
                    status, body = 200, CHAT_COMPLETION
                    headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499"}
                    if fake.cookie:
                        headers["set-cookie"] = fake.cookie
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)

    def reset(self, limited: int = 0, retry_after: str = "2", cookie: str = "") -> "RateLimitedUpstream":
        """Forget past requests; refuse the next ``limited`` ones."""
        self.limited = limited
        self.retry_after = retry_after
        self.cookie = cookie
        self.arrivals: list[float] = []
        self.headers: list[dict[str, str]] = []
        return self



class ChatOnlyUpstream(LoopbackApp):
    """An OpenAI-compatible API that speaks only chat completions, as llama-server or vLLM
    without its Responses API do: ``POST /v1/chat/completions`` (streamed or not) and
    ``GET /v1/models`` are passed on to a real API (``target``, e.g. the live server with
    the real model), anything else answers 404. Records each request's path, JSON body and headers.

    Not a fake answer: the model's answers are real; only the routes are narrowed, so a test
    can see that nothing asked this upstream for ``/v1/responses``. With ``split_usage``, a
    streamed piece that carries ``usage`` is sent in two TCP writes 50 ms apart, cut inside
    the usage object, as a network may deliver it. ``also`` passes more POST paths on
    (``/v1/responses``...). With ``images``, the image operations are answered here, as
    OpenAI answers them (one tiny PNG per ``n``): the only answers not the real API's, for
    an operation this service does not serve."""

    def __init__(self, target: str, split_usage: bool = False, also: tuple[str, ...] = (), images: bool = False) -> None:
        super().__init__()
        self.target = target
        self.split_usage = split_usage
        self.also = also
        self.images = images
        self.splits = 0  # pieces sent in two writes
        self.requests: list[tuple[str, dict | None]] = []
        self.headers: list[dict[str, str]] = []  # each request's headers, lower-cased names

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    async def started(self) -> None:
        from aiohttp import ClientSession

        self._session = ClientSession()

    async def stopping(self) -> None:
        await self._session.close()

    def routes(self, app) -> None:
        import asyncio

        from aiohttp import web

        async def record(request) -> bytes:
            body = await request.read()
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            self.requests.append((request.path, parsed))
            self.headers.append({name.lower(): value for name, value in request.headers.items()})
            return body

        async def passed_on(request):
            body = await record(request)
            async with self._session.request(
                request.method, self.target + request.path[len("/v1") :], data=body or None,
                headers={"content-type": "application/json"},
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status, headers={"content-type": upstream.headers.get("content-type", "application/json")}
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    cut = chunk.find(b'"usage":{') + len(b'"usage":{"')
                    if self.split_usage and cut > len(b'"usage":{"'):
                        await response.write(chunk[:cut])  # write() drains: the first half is sent
                        self.splits += 1
                        await asyncio.sleep(0.05)
                        chunk = chunk[cut:]
                    await response.write(chunk)
                await response.write_eof()
                return response

        async def image(request):
            body = await record(request)
            if request.content_type == "multipart/form-data":
                n = (await _form_fields(request, body)).get("n", "1")
            else:
                n = (json.loads(body) if body else {}).get("n") or 1
            return web.json_response({"created": int(time.time()), "data": [{"b64_json": PNG}] * int(n)})

        async def not_found(request):
            await record(request)
            error = {"error": {"message": "Not found", "type": "invalid_request_error", "param": None, "code": None}}
            return web.json_response(error, status=404)

        app.router.add_post("/v1/chat/completions", passed_on)
        app.router.add_get("/v1/models", passed_on)
        for path in self.also:
            app.router.add_post(path, passed_on)
        if self.images:
            for path in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations"):
                app.router.add_post(path, image)
        app.router.add_route("*", "/{tail:.*}", not_found)


# A 1x1 transparent PNG, base64: an image as OpenAI's ``b64_json`` carries one.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


async def _form_fields(request, body: bytes) -> dict[str, str]:
    """The text fields of a multipart request already read (``body``)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"content-type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + body)
    return {part.get_param("name", header="content-disposition"): part.get_content() for part in message.iter_parts()
            if part.get_filename() is None}


class GarbledUpstream(ThreadedUpstream):
    """Answers 200 with bodies the tenant guard cannot read: a list cut short (``GET
    /v1/files``), a list as HTML (``GET /v1/batches``), a gzip-encoded list (``GET
    /v1/vector_stores``), a stream with an event that is not JSON (``POST /v1/responses``;
    for model ``gpt-split``, its events written in pieces cut inside them, a pause between).
    Every such list would show another tenant's objects if it were passed on unread. And
    answers past any read limit, without a length, in 64 KiB writes: ``ENDLESS`` bytes of one
    event that never ends (``POST /v1/chat/completions``), of a list (``GET
    /v1/assistants``) and of embeddings (``POST /v1/embeddings``, which hold no object); answers that are not JSON where the document shows no object (images,
    moderations); and to any request for model ``gpt-deep``, JSON 100,000 brackets deep."""

    ENDLESS = 128 << 20
    PIECE = 64 << 10
    DEEP = b'{"usage": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # any request for model ``gpt-deep``

    CREATED = b'data: {"type": "response.created", "response": {"id": "resp_x", "object": "response"}}\n\n'
    IN_PROGRESS = b'data: {"type": "response.in_progress", "response": {"id": "resp_x", "object": "response"}}\n\n'
    SPLIT = (CREATED[:30], CREATED[30:] + IN_PROGRESS[:-1], IN_PROGRESS[-1:] + b"data: {not", b" json\n\n")

    LIST = json.dumps({"object": "list", "data": [{"id": "file-of-another", "object": "file"}], "has_more": False})
    ANSWERS = {
        ("GET", "/v1/files"): ("application/json", {}, LIST[:-20].encode()),
        ("GET", "/v1/batches"): ("text/html", {}, b"<html>" + LIST.encode() + b"</html>"),
        ("GET", "/v1/vector_stores"): ("application/json", {"Content-Encoding": "gzip"}, None),
        ("POST", "/v1/images/generations"): ("application/json", {}, b"<not json, and nothing of anyone's>"),
        ("POST", "/v1/moderations"): ("application/json", {}, b"<not json, and nothing of anyone's>"),
        ("POST", "/v1/responses"): (
            "text/event-stream", {}, b'data: {"type": "response.created", "response": {"id": "resp_x", "object": "response"}}\n\n'
            b"data: {not json\n\n",
        ),
    }

    def __init__(self) -> None:
        import gzip

        answers = dict(self.ANSWERS)
        kind, headers, _ = answers[("GET", "/v1/vector_stores")]
        answers[("GET", "/v1/vector_stores")] = (kind, headers, gzip.compress(self.LIST.encode()))

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = self.rfile.read(length)
                route = (self.command, self.path.split("?")[0])
                if route in self.NO_END and b'"gpt-deep"' not in request:
                    self._endless(*self.NO_END[route])
                    return
                kind, headers, body = answers.get(route, ("application/json", {}, b"{}"))
                if b'"gpt-deep"' in request:
                    kind, headers, body = "application/json", {}, GarbledUpstream.DEEP
                pieces = GarbledUpstream.SPLIT if b'"gpt-split"' in request else (body,)
                self.send_response(200)
                self.send_header("content-type", kind)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(sum(map(len, pieces))))
                self.end_headers()
                for piece in pieces:
                    self.wfile.write(piece)
                    self.wfile.flush()
                    time.sleep(0.05 if len(pieces) > 1 else 0)

            NO_END = {
                ("POST", "/v1/chat/completions"): ("text/event-stream", b'data: {"choices": [{"delta": {"content": "'),
                ("GET", "/v1/assistants"): ("application/json", b'{"object": "list", "data": [{"id": "asst_x", "object": "assistant", "name": "'),
                ("POST", "/v1/embeddings"): ("application/json", b'{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": "'),
            }

            def _endless(self, kind: str, start: bytes) -> None:
                self.send_response(200)
                self.send_header("content-type", kind)
                self.end_headers()  # no length: the body ends when the connection does
                self.wfile.write(start)
                try:
                    for _ in range(GarbledUpstream.ENDLESS // GarbledUpstream.PIECE):
                        self.wfile.write(b"a" * GarbledUpstream.PIECE)
                except OSError:
                    pass  # the gateway gave up reading: what it should do
                self.close_connection = True

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)


class LongEventUpstream(ThreadedUpstream):
    """Answers with ``size`` bytes of content, as an upstream may (a model that writes a file
    out whole), each time with a new id: a chat stream of one chunk, with its usage as
    OpenAI sends it when asked (``"usage":null`` last in every chunk, then a usage chunk); a
    whole chat completion; embeddings of 3.8 million numbers, 19 MB (``model`` and ``usage``
    after them, as OpenAI writes them); and as Anthropic's Messages API (``/messages``): a
    stream whose one text delta is the content, between ``message_start`` and
    ``message_delta`` with their usage, or a whole Message. Whole answers come without a
    length, ended by the connection's close. A real upstream here would take minutes of
    generation to write one."""

    USAGE = {"prompt_tokens": 11, "completion_tokens": 1, "total_tokens": 12}
    MESSAGE_USAGE = {"input_tokens": 13, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 3}
    VECTORS = 2500  # of 1,536 numbers: 19 MB

    def __init__(self, size: int) -> None:
        content = "a" * size
        vectors = [{"object": "embedding", "index": i, "embedding": [0.5] * 1536} for i in range(self.VECTORS)]
        embeddings = json.dumps({"object": "list", "data": vectors, "model": "gpt-x", "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                head = {"id": "chatcmpl-" + str(time.monotonic_ns()), "object": "chat.completion", "created": 1, "model": "gpt-x"}
                if self.path.endswith("/embeddings"):
                    return self._send("application/json", embeddings)
                if self.path.endswith("/messages"):
                    return self._message(request, content)
                if not request.get("stream"):
                    message = {"role": "assistant", "content": content}
                    answer = {**head, "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": LongEventUpstream.USAGE}
                    return self._send("application/json", json.dumps(answer).encode())
                head["object"] = "chat.completion.chunk"
                chunks = [{**head, "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": "stop"}]}]
                if (request.get("stream_options") or {}).get("include_usage") is True:
                    chunks = [{**chunks[0], "usage": None}, {**head, "choices": [], "usage": LongEventUpstream.USAGE}]
                body = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks) + b"data: [DONE]\n\n"
                self._send("text/event-stream", body, length=True)

            def _message(self, request: dict, content: str) -> None:
                usage = LongEventUpstream.MESSAGE_USAGE
                message = {"id": "msg_" + str(time.monotonic_ns()), "type": "message", "role": "assistant", "model": request["model"],
                           "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}
                if not request.get("stream"):
                    whole = {**message, "content": [{"type": "text", "text": content}], "stop_reason": "end_turn", "usage": usage}
                    return self._send("application/json", json.dumps(whole).encode())
                events = [
                    ("message_start", {"type": "message_start", "message": message}),
                    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": content}}),
                    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                       "usage": {"output_tokens": usage["output_tokens"]}}),
                    ("message_stop", {"type": "message_stop"}),
                ]
                self._send("text/event-stream", b"".join(b"event: %s\ndata: %s\n\n" % (name.encode(), json.dumps(data).encode()) for name, data in events))

            def _send(self, kind: str, body: bytes, length: bool = False) -> None:
                self.send_response(200)
                self.send_header("content-type", kind)
                if length:
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                for start in range(0, len(body), GarbledUpstream.PIECE):
                    self.wfile.write(body[start : start + GarbledUpstream.PIECE])
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)
