"""The Responses WebSocket mode passes the same edge as HTTP (http/middleware.py): the
handshake's ``Origin`` checked against ``cors_origins`` (same-origin and non-browser
clients allowed), a request id, the access log, the metrics, per-key rate limits and the
usage accounting per ``response.create``; and a lane's queue is bounded.

The official SDK's ``client.responses.connect()`` where it applies; raw ``websockets`` for
what the SDK does not expose (the handshake's headers, an ``Origin``)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from llm_backend.http.responses_socket import LANE_QUEUE
from tests.conftest import MODEL
from tests.support.metrics import scrape, scrape_until, value
from tests.e2e.test_responses_websocket import TERMINAL, until_terminal
from tests.support.clients import async_sdk, keyed_server, sdk
from tests.support.server import LiveServer, access_lines, log_size

# One key per test: each may make RPM requests a minute (a handshake counts as one).
KEYS = {name: f"sk-ws-{name}" for name in ("metrics", "log", "usage", "limited")}
ADMIN = "sk-ws-admin"
RPM = 3
ALLOWED = "http://allowed.example"


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> LiveServer:
    env = {
        "LLM_BACKEND_CORS_ORIGINS": ALLOWED,
        "LLM_BACKEND_RATE_LIMIT_RPM": str(RPM),
        "LLM_BACKEND_USAGE_FLUSH_SECONDS": "0.2",
    }
    with keyed_server(tmp_path_factory.mktemp("websocket-edge"), list(KEYS.values()), [ADMIN], env=env) as server:
        yield server


def socket_url(live: LiveServer, path: str = "/v1/responses") -> str:
    return live.base_url.replace("http://", "ws://") + path


def handshake(live: LiveServer, key: str, origin: str | None, path: str = "/v1/responses") -> tuple[int, dict, bytes]:
    """Open and close a socket: the handshake's status, headers and (refused) body."""

    async def open_once():
        try:
            async with websockets.connect(
                socket_url(live, path), origin=origin, additional_headers={"Authorization": f"Bearer {key}"}
            ) as socket:
                return socket.response.status_code, dict(socket.response.headers), b""
        except websockets.exceptions.InvalidStatus as refused:
            return refused.response.status_code, dict(refused.response.headers), refused.response.body

    return asyncio.run(open_once())


def test_a_cross_site_handshake_is_refused_before_it_is_accepted(live):
    status, headers, body = handshake(live, ADMIN, "http://evil.example")
    assert status == 403 and headers["x-request-id"].startswith("req_")
    error = json.loads(body)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "origin_not_allowed")
    assert "http://evil.example" in error["message"]


def test_same_origin_and_listed_origins_and_clients_without_an_origin_are_accepted(live):
    for origin in (live.base_url, ALLOWED, None):
        status, headers, _ = handshake(live, ADMIN, origin)
        assert status == 101 and headers["x-request-id"].startswith("req_"), origin


def test_the_origin_is_checked_before_the_key(live):
    """A page of another site cannot even probe keys through a socket."""
    status, _, body = handshake(live, "not-a-key", "http://evil.example")
    assert status == 403 and json.loads(body)["error"]["code"] == "origin_not_allowed"


@pytest.mark.parametrize("path", ["/v1/no-such-socket", "/v1/chat/completions", "/elsewhere"])
def test_a_handshake_where_no_socket_is_served_is_404_unknown_url_as_over_http(live, path):
    # Not Starlette's bare 403, which a client reads as its key refused.
    since = log_size(live)
    status, headers, body = handshake(live, ADMIN, None, path)
    assert status == 404 and headers["x-request-id"].startswith("req_")
    assert json.loads(body) == httpx.get(live.base_url + "/v1/no-such-thing", timeout=10).json()
    assert access_lines(live, path, since=since, expect=1)[0]["status"] == 404


def test_websocket_responses_show_in_the_metrics(live):
    labels = {"operation": "createResponse", "model": MODEL}
    before = scrape(live, ADMIN)
    with sdk(live, api_key=KEYS["metrics"]).responses.connect() as connection:
        connection.response.create(model=MODEL, input="Say hello.", max_output_tokens=16)
        final = until_terminal(connection)[-1].response
    answered, ok = "llm_backend_requests_total", {**labels, "status": "200"}
    after = scrape_until(live, lambda samples: value(samples, answered, **ok) > value(before, answered, **ok), ADMIN)

    def grew(name: str, **extra: str) -> float:
        return value(after, name, **labels, **extra) - value(before, name, **labels, **extra)

    assert grew("llm_backend_requests_total", status="200") == 1
    assert grew("llm_backend_request_duration_seconds_count") == 1
    assert grew("llm_backend_time_to_first_token_seconds_count") == 1

    def tokens(samples: dict, name: str) -> float:
        return sum(v for (n, ls), v in samples.items() if n == name and dict(ls).get("model") == MODEL)

    assert tokens(after, "llm_backend_completion_tokens_total") - tokens(before, "llm_backend_completion_tokens_total") == (
        final.usage.output_tokens
    )


def test_websocket_responses_show_in_the_access_log_with_the_sockets_request_id(live):
    since = log_size(live)

    async def one_response() -> str:
        headers = {"Authorization": f"Bearer {KEYS['log']}"}
        async with websockets.connect(socket_url(live), additional_headers=headers) as socket:
            await socket.send(json.dumps({"type": "response.create", "model": MODEL, "input": "Hi", "max_output_tokens": 16}))
            while json.loads(await socket.recv())["type"] not in TERMINAL:
                pass
            return socket.response.headers["x-request-id"]

    request_id = asyncio.run(one_response())
    # Its lines by the socket's request id: the previous case's socket may be logged after
    # ``since`` too (its lines are written when the server sees it close).
    lines = access_lines(live, "/v1/responses", since, expect=2, request_id=request_id)
    by_method = {line["method"]: line for line in lines}
    assert set(by_method) == {"WEBSOCKET", "GET"} and len(lines) == 2, lines
    assert (by_method["WEBSOCKET"]["status"], by_method["GET"]["status"]) == (200, 101)
    assert by_method["GET"]["duration_ms"] >= by_method["WEBSOCKET"]["duration_ms"] > 0


def test_a_key_over_its_rate_limit_gets_the_rate_limit_error_event(live):
    with sdk(live, api_key=KEYS["limited"]).responses.connect() as connection:  # request 1 of RPM
        for _ in range(RPM - 1):
            connection.response.create(model=MODEL, input="Hi", max_output_tokens=16)
            assert until_terminal(connection)[-1].type in ("response.completed", "response.incomplete")
        connection.response.create(model=MODEL, input="Hi", max_output_tokens=16)
        refused = connection.recv()
    assert (refused.type, refused.status) == ("error", 429)
    assert refused.error.code == "rate_limit_exceeded" and f"Limit {RPM}" in refused.error.message


def test_each_websocket_response_is_one_request_in_the_usage_accounting(live):
    usage = sdk(live, api_key=ADMIN, admin_api_key=ADMIN).admin.organization.usage
    start = int(time.time()) - 60

    def totals() -> tuple[int, int, int]:
        page = usage.completions(start_time=start, bucket_width="1m")
        results = [result for bucket in page.data for result in bucket.results]
        return tuple(sum(getattr(r, name) for r in results) for name in ("num_model_requests", "input_tokens", "output_tokens"))

    time.sleep(0.5)  # the earlier tests' usage is written (every 0.2 s here)
    before = totals()
    with sdk(live, api_key=KEYS["usage"]).responses.connect() as connection:
        finals = []
        for _ in range(2):
            connection.response.create(model=MODEL, input="Name a colour.", max_output_tokens=16)
            finals.append(until_terminal(connection)[-1].response)
    expected = (2, sum(f.usage.input_tokens for f in finals), sum(f.usage.output_tokens for f in finals))
    deadline = time.monotonic() + 10
    while (grown := tuple(a - b for a, b in zip(totals(), before))) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert grown == expected


async def test_a_lane_holds_a_bounded_queue_and_refuses_one_event_more(live):
    client = async_sdk(live, api_key=ADMIN)  # no rate limit
    sent = LANE_QUEUE + 2  # one answered, LANE_QUEUE waiting, one too many
    async with client.responses.connect() as connection:
        for _ in range(sent):
            await connection.response.create(model=MODEL, input="Hi", max_output_tokens=16, stream_id="lane")
        ended, errors = 0, []
        async for event in connection:
            if event.type == "error":
                errors.append(event)
            elif event.type in TERMINAL:
                ended += 1
            if ended + len(errors) == sent:
                break
    assert ended == LANE_QUEUE + 1
    assert [(e.status, e.error.code, e.stream_id) for e in errors] == [(429, "websocket_stream_queue_full", "lane")]
