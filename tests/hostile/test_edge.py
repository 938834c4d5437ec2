"""The edge of a keyless service (issue #33, seen live: with a DNS-rebound ``Host`` the
WebSocket handshake was accepted and HTTP answered; a cross-site multipart POST, a CORS
"simple" request with no preflight, uploaded a file). A keyless service answers 403 to a
foreign ``Host`` and to another site's writes; its own pages, the SDK and curl keep working;
keys or ``allowed_hosts``/``cors_origins`` open what the operator chooses. Real Chromium plays
the attacker's page."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.clients import keyed_server, sdk
from tests.support.server import LiveServer, access_lines, log_size

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
REBOUND = "attacker.example"


def files_named(live, name: str) -> list[str]:
    return [file.id for file in sdk(live).files.list() if file.filename == name]


def upload(live, name: str, **headers: str) -> httpx.Response:
    return httpx.post(
        live.api + "/files", headers=headers, data={"purpose": "assistants"}, files={"file": (name, b"hello")}, timeout=60
    )


def handshake(live, host: str | None = None, origin: str | None = None) -> int:
    """The status of a Responses WebSocket handshake (101 when accepted)."""
    headers = {**({"Host": host} if host else {}), **({"Origin": origin} if origin else {})}

    async def connect() -> int:
        try:
            async with websockets.connect(live.base_url.replace("http", "ws") + "/v1/responses", additional_headers=headers, open_timeout=30):
                return 101
        except websockets.exceptions.InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(connect())


@pytest.mark.parametrize("host", [f"{REBOUND}:8000", REBOUND, "127.0.0.1.nip.io", "evil.com:80"])
def test_a_keyless_service_refuses_a_foreign_host(server, host):
    answer = httpx.get(server.api + "/models", headers={"Host": host}, timeout=30)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "host_not_allowed"
    assert handshake(server, host=host) == 403


@pytest.mark.parametrize("host", ["localhost", "localhost:1234", "app.localhost", "127.0.0.1", "127.0.0.2:9", "[::1]:8000", "10.1.2.3"])
def test_loopback_names_and_addresses_are_its_own(server, host):
    assert httpx.get(server.api + "/models", headers={"Host": host}, timeout=30).status_code == 200


def test_another_sites_write_is_refused_and_stores_nothing(server, measured):
    since = log_size(server)
    with measured(server):
        refused = [
            upload(server, "cross-origin.txt", Origin="https://evil.example"),
            upload(server, "cross-origin.txt", Origin="null"),
            upload(server, "cross-origin.txt", **{"Sec-Fetch-Site": "cross-site"}),
        ]
    for answer in refused:
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "origin_not_allowed", answer.text
    assert len(access_lines(server, "/v1/files", since, expect=3)) >= 3
    assert files_named(server, "cross-origin.txt") == []


def test_its_own_pages_and_clients_without_an_origin_still_write(server):
    assert upload(server, "same-origin.txt", Origin=server.base_url).status_code == 200
    assert upload(server, "no-origin.txt").status_code == 200
    assert files_named(server, "same-origin.txt") and files_named(server, "no-origin.txt")
    reply = sdk(server).chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert reply.choices


# The edge is at stake, not generation: the servers started here load no model (~1 CPU-s less each).
LAZY = {"LLM_BACKEND_MODEL_LOAD": "lazy"}


def test_allowed_hosts_and_cors_origins_open_what_the_operator_names(start_server):
    live = start_server(env={"LLM_BACKEND_ALLOWED_HOSTS": "api.example,*.corp.example", "LLM_BACKEND_CORS_ORIGINS": "https://app.example", **LAZY})
    for host in ("api.example", "x.corp.example:8000"):
        assert httpx.get(live.api + "/models", headers={"Host": host}, timeout=30).status_code == 200
    assert httpx.get(live.api + "/models", headers={"Host": "other.example"}, timeout=30).status_code == 403
    assert upload(live, "listed.txt", Origin="https://app.example").status_code == 200
    assert upload(live, "unlisted.txt", Origin="https://evil.example").status_code == 403


def test_with_keys_a_name_and_another_sites_request_are_the_keys_business(tmp_path):
    """A page cannot know a key: with keys, names and origins are not checked (unless
    allowed_hosts is set), so a deployment behind its own DNS name keeps working."""
    with keyed_server(tmp_path / "keyed", ["sk-edge-key-0f3b"], env=LAZY) as live:
        headers = {"Authorization": "Bearer sk-edge-key-0f3b", "Host": "llm-backend.svc", "Origin": "https://chat.example"}
        assert httpx.get(live.api + "/models", headers=headers, timeout=30).status_code == 200
        answer = httpx.post(live.api + "/files", headers=headers, data={"purpose": "assistants"}, files={"file": ("k.txt", b"k")}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert httpx.get(live.api + "/models", headers={"Host": REBOUND}, timeout=30).status_code == 401


class AttackerSite:
    """Another site's page (served on ``localhost``, a different site from ``127.0.0.1``)
    that uploads a file with a simple cross-site POST and opens the Responses WebSocket."""

    PAGE = b"""<!doctype html><script>
    (async () => {
      const target = new URLSearchParams(location.search).get("target");
      const form = new FormData();
      form.append("purpose", "assistants");
      form.append("file", new Blob(["stolen"]), "attacker.txt");
      await fetch(target + "/v1/files", { method: "POST", body: form, mode: "no-cors" }).catch(() => {});
      const ws = await new Promise((resolve) => {
        const socket = new WebSocket(target.replace("http", "ws") + "/v1/responses");
        socket.onopen = () => resolve("open");
        socket.onerror = () => resolve("refused");
      });
      window.result = { ws };
    })();
    </script>"""

    def __enter__(self) -> "AttackerSite":
        page = self.PAGE

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://localhost:{self.server.server_address[1]}/"
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def chromium(live, scenario: str, url: str, env: dict | None = None) -> dict:
    assert (NODE_DIR / "node_modules" / "playwright-core").is_dir(), "run `make test` (it installs tests/node)"
    result = subprocess.run(
        ["node", "browser.mjs", live.base_url, scenario, url], cwd=NODE_DIR, capture_output=True, text=True,
        timeout=240, check=False, env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_in_chromium_another_sites_page_can_neither_upload_nor_open_a_socket(server):
    with AttackerSite() as site:
        seen = chromium(server, "attack", site.url)
    assert seen["result"] == {"ws": "refused"}
    assert files_named(server, "attacker.txt") == []


def test_in_chromium_a_rebound_name_is_refused(server):
    port = server.base_url.rsplit(":", 1)[1]
    seen = chromium(server, "rebound", f"http://{REBOUND}:{port}/playground", env={"HOST_RULES": f"MAP {REBOUND} 127.0.0.1"})
    assert seen["status"] == 403 and json.loads(seen["body"])["error"]["code"] == "host_not_allowed"


@pytest.fixture(scope="module")
def short_deadline(tmp_path_factory):
    """A server whose bodies must arrive within 2 s (plus their bytes' time)."""
    with LiveServer(tmp_path_factory.mktemp("short-deadline"), env={"LLM_BACKEND_BODY_TIMEOUT": "2"}) as live:
        yield live


def trickle(live, seconds: float, content_length: int = 1000, path: str = "/v1/chat/completions", content_type: str = "application/json", prefix: bytes = b"", chunked: bool = False) -> bytes:
    """A body sent a byte every half second (slowloris), with a length or in chunks of a
    byte; what the server answered, if anything."""
    import socket
    import time

    host, port = live.base_url.rsplit("/", 1)[1].split(":")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {content_length}"
    if chunked and prefix:
        prefix = f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n"
    with socket.create_connection((host, int(port)), timeout=seconds + 30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode() + prefix)
        deadline = time.monotonic() + seconds
        sock.settimeout(0.5)
        answer = b""
        while time.monotonic() < deadline and not answer:
            try:
                sock.sendall(b"1\r\n \r\n" if chunked else b" ")
                answer = sock.recv(65536)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
        # The head and the body may come in separate packets: read on until the body is whole.
        sock.settimeout(5)
        while b"\r\n\r\n" in answer:
            head, _, body = answer.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                break
            try:
                more = sock.recv(65536)
            except OSError:
                break
            if not more:
                break
            answer += more
        return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files", "/v1/vector_stores"], ids=["fast-lane", "upload", "connexion"])
def test_a_body_that_trickles_in_is_cut_with_a_408(short_deadline, measured, path, chunked):
    # Chunked bodies were read whole (to learn their length) before the deadline's clock
    # started: a chunked trickle had no answer after 25 s (issue #39).
    live = short_deadline
    with measured(live):
        upload = path == "/v1/files"
        kind = "multipart/form-data; boundary=x" if upload else "application/json"
        prefix = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n' if upload else b""
        answer = trickle(live, seconds=20, path=path, content_type=kind, prefix=prefix, chunked=chunked)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"request_timeout"' in answer.replace(b" ", b"")
    assert httpx.post(live.api + "/chat/completions", json={"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}, timeout=60).status_code == 200


def test_many_websocket_connections_and_lanes_stay_bounded(server, measured):
    """Three connections at once, each asking for more lanes and more queued events than it
    may hold, every event 50 KB: what is held is bounded by the lanes (16), their queues (4)
    and the model's queue, the rest refused at once; closing the sockets stops the work. The
    bound checked is each connection's: ten connections (1 200 events, 60 MB of JSON) cost
    ~10 CPU-s more for the same check, and with fewer the model's queue refuses less of what
    the lanes' bound must."""
    import json as json_module

    from llm_backend.http.responses_socket import LANE_QUEUE, MAX_LANES

    text = "word " * 10_000

    async def one_connection() -> tuple[int, int]:
        url = server.base_url.replace("http", "ws") + "/v1/responses"
        refused = sent = 0
        async with websockets.connect(url, max_size=None, open_timeout=30) as socket:
            for lane in range(MAX_LANES + 4):
                for _ in range(LANE_QUEUE + 2):
                    event = {"type": "response.create", "model": "smollm2", "input": text, "max_output_tokens": 16, "stream_id": f"l{lane}"}
                    await socket.send(json_module.dumps(event))
                    sent += 1
            try:
                while True:
                    frame = json_module.loads(await asyncio.wait_for(socket.recv(), 5))
                    refused += frame.get("type") == "error"
            except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
                pass
        return sent, refused

    async def all_of_them() -> list[tuple[int, int]]:
        return await asyncio.gather(*(one_connection() for _ in range(3)))

    with measured(server):
        results = asyncio.run(all_of_them())
    for sent, refused in results:
        assert refused >= sent - MAX_LANES * (LANE_QUEUE + 1), (sent, refused)
