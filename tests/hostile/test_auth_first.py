"""The key is checked before a body is read, on every lane (issue #39, seen live: the fast
lane parsed and validated 8.4 MB of empty strings before its 401, 48 s, and ``/health``
waited as long).

A client sends the head of a large request and only the first part of its body: a service
that checks the key first answers 401 (403 for an admin operation asked with another key)
while the rest of the body has not been sent; one that reads the body first waits for it.
The server's own figure for the answer (the access log's ``duration_ms``) stays within the
issue's 100 ms. The key is counted once by the rate limits, whichever lane answers.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.support.clients import keyed_server
from tests.support.server import access_lines, log_size

KEY, ADMIN = "sk-auth-first-key", "sk-auth-first-admin"
MiB = 1 << 20
SENT = 64 * 1024  # of the body, before the answer is awaited


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "LLM_BACKEND_RATE_LIMIT_RPM": "1000"}
    with keyed_server(tmp_path_factory.mktemp("auth-first"), [KEY], [ADMIN], env=env) as live:
        yield live


def first_part_only(live, path: str, headers: dict[str, str], chunked: bool = False) -> tuple[bytes, float]:
    """The answer to a POST of ``path`` whose 8 MiB body is sent only in part (``SENT``
    bytes), and the seconds it took from the end of the head."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {8 * MiB}\r\n\r\n"
    part = b"[" + b'"",' * (SENT // 3)
    if chunked:
        part = f"{len(part):x}\r\n".encode() + part + b"\r\n"
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
        sock.sendall(head.encode())
        started = time.perf_counter()
        sock.sendall(part)
        answer = sock.recv(65536)
        seconds = time.perf_counter() - started
        while b"\r\n\r\n" in answer:  # the head and the body may come apart
            head, _, body = answer.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length or not (more := sock.recv(65536)):
                break
            answer += more
        return answer, seconds


LANES = {
    # the fast lane (a JSON body and nothing else), with and without a length
    "fast-lane": ("/v1/moderations", "application/json", False),
    "fast-lane-chunked": ("/v1/embeddings", "application/json", True),
    # Connexion's lane: an operation with a path parameter
    "connexion": ("/v1/conversations/conv_abc/items", "application/json", False),
    # a multipart upload, with and without a length
    "multipart": ("/v1/files", "multipart/form-data; boundary=x", False),
    "multipart-chunked": ("/v1/audio/transcriptions", "multipart/form-data; boundary=x", True),
}


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("authorization", [None, "Bearer sk-wrong"], ids=["no-key", "wrong-key"])
def test_an_unauthenticated_body_is_refused_before_it_is_read(keyed, lane, authorization):
    path, content_type, chunked = LANES[lane]
    headers = {"Content-Type": content_type, **({"Authorization": authorization} if authorization else {})}
    for attempt in range(2):  # the time asked again once: a busy machine may deschedule the server
        since = log_size(keyed)
        answer, seconds = first_part_only(keyed, path, headers, chunked)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
        body = json.loads(answer.partition(b"\r\n\r\n")[2] or b"{}")
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "invalid_api_key"
        [line] = access_lines(keyed, path, since, expect=1)
        assert line["status"] == 401
        if line["duration_ms"] <= 100:
            break
    assert line["duration_ms"] <= 100, (line, seconds)


def test_an_admin_operation_asked_with_an_api_key_is_refused_before_its_body(keyed):
    answer, _ = first_part_only(keyed, "/admin/models/smollm2/load", {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    assert answer.startswith(b"HTTP/1.1 403"), answer[:300]


def test_a_right_key_is_counted_once_whichever_lane_answers(keyed):
    """One request, one count: the fast lane's answer, its 400 and Connexion's each take one
    request of the key's minute (the lane once asked the key again after Connexion had)."""
    headers = {"Authorization": f"Bearer {KEY}"}

    def remaining(answer: httpx.Response) -> int:
        return int(answer.headers["x-ratelimit-remaining-requests"])

    with httpx.Client(base_url=keyed.api, headers=headers, timeout=60) as client:
        counts = [
            remaining(client.post("/moderations", json={"input": "hi", "model": "no-such-model"})),
            remaining(client.post("/moderations", json={"input": 12})),  # the lane's 400
            remaining(client.post("/conversations/conv_missing", json={"metadata": {"a": "b"}})),  # Connexion's lane
            remaining(client.get("/models")),
        ]
    assert [a - b for a, b in zip(counts, counts[1:])] == [1, 1, 1], counts
