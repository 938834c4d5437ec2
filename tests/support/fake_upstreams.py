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


class RateLimitedUpstream:
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def reset(self, limited: int = 0, retry_after: str = "2", cookie: str = "") -> "RateLimitedUpstream":
        """Forget past requests; refuse the next ``limited`` ones."""
        self.limited = limited
        self.retry_after = retry_after
        self.cookie = cookie
        self.arrivals: list[float] = []
        self.headers: list[dict[str, str]] = []
        return self

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "RateLimitedUpstream":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
