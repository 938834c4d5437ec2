"""A WebSocket is bounded in time like a request (issue #39): a Responses WebSocket lives at
most ``responses_websocket_seconds`` (OpenAI's: 60 minutes), and a message's fragments, or a
frame's bytes, may not trickle in: the body deadline's rule holds for each message."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time

import pytest
import websockets

from tests.support.server import LiveServer

LIFETIME = 4
DEADLINE = 2


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory):
    env = {
        "LLM_BACKEND_LOCAL_MODELS": "false",
        "LLM_BACKEND_RESPONSES_WEBSOCKET_SECONDS": str(LIFETIME),
        "LLM_BACKEND_BODY_TIMEOUT": str(DEADLINE),
    }
    with LiveServer(tmp_path_factory.mktemp("socket-deadlines"), env=env) as live:
        yield live


def url(live) -> str:
    return live.base_url.replace("http", "ws") + "/v1/responses"


def test_a_responses_websocket_is_closed_at_the_end_of_its_lifetime_with_openais_error(short_lived):
    async def run():
        async with websockets.connect(url(short_lived), open_timeout=30) as ws:
            started = time.monotonic()
            event = json.loads(await asyncio.wait_for(ws.recv(), LIFETIME + 10))
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 10)
            return event, time.monotonic() - started, ws.close_code

    event, seconds, code = asyncio.run(run())
    assert event["type"] == "error" and event["error"]["code"] == "websocket_connection_limit_reached", event
    assert event["error"]["type"] == "invalid_request_error" and "stream_id" not in event
    assert LIFETIME - 1 <= seconds <= LIFETIME + 5 and code == 1000


def test_a_message_whose_fragments_trickle_in_is_cut(short_lived):
    async def fragments():
        yield '{"type": "response.create", '
        for _ in range(30):
            await asyncio.sleep(0.5)
            yield " "

    async def run():
        async with websockets.connect(url(short_lived), open_timeout=30) as ws:
            started = time.monotonic()
            sending = asyncio.create_task(ws.send(fragments()))
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 15)
            sending.cancel()
            return time.monotonic() - started, ws.close_code, ws.close_reason

    seconds, code, reason = asyncio.run(run())
    assert code == 1008 and reason.startswith("message_timeout"), (code, reason)
    assert seconds < DEADLINE + 5


def test_a_frame_whose_bytes_trickle_in_is_cut(short_lived):
    """One unfragmented frame announcing 1000 bytes, sent a byte every half second."""
    with socket.create_connection(("127.0.0.1", short_lived.port), timeout=30) as sock:
        sock.sendall(
            b"GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 101")
        sock.sendall(b"\x81" + bytes([0x80 | 126]) + struct.pack("!H", 1000) + b"\x00\x00\x00\x00")
        started, closed = time.monotonic(), b""
        sock.settimeout(0.5)
        while time.monotonic() - started < 15 and not closed:
            try:
                sock.sendall(b" ")
                closed = sock.recv(4096)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                break
    assert closed[:1] == b"\x88", closed  # a close frame
    assert struct.unpack("!H", closed[2:4])[0] == 1008 and b"message_timeout" in closed
    assert time.monotonic() - started < DEADLINE + 5


def test_a_message_arriving_at_a_fair_rate_is_read(short_lived):
    """A 1 MiB message in 64 fragments over a few seconds: its bytes keep its time (sent
    uncompressed: the deadline counts the bytes that come, and 'x' * 16384 deflates to 42)."""

    async def fragments():
        yield '{"type": "response.create", "model": "nobody", "input": "'
        for _ in range(64):
            await asyncio.sleep(0.05)
            yield "x" * 16384
        yield '"}'

    async def run():
        async with websockets.connect(url(short_lived), open_timeout=30, max_size=None, compression=None) as ws:
            await ws.send(fragments())
            return json.loads(await asyncio.wait_for(ws.recv(), 30))

    event = asyncio.run(run())
    assert event["type"] == "error" and event["status"] in (400, 404), event  # answered: the model is unknown
