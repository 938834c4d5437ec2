"""Structure bounded before it is built, on every reader (issue #47, seen live on 8286eb8): a
chat whose ``metadata`` was 200,000 ``[`` then 200,000 ``]`` (400 KB) grew the API process
by 18.7 GB until the kernel killed it (ijson's ``items``, used above ``LARGE_BODY``, names
each event's path: quadratic in the depth); 20,000 levels, a small body, were refused at
once. Now every lane's JSON is scanned first (``llm_backend/json/scan.py``): nested ``[``,
``{`` or both at 20 k, 200 k and 2 M levels (4 MB, under the 8 MiB body limit) are refused
with 400 ``invalid_body`` within 10 s, as an HTTP body (whole, or inside ``metadata``), a
Responses WebSocket ``response.create``, a Realtime event and a batch line; no process of
the service grows more than 400 MB (``measured``) and ``/health``, asked from a process of
its own, waits no longer than ``HEALTH_WAIT`` meanwhile."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.conftest import MODEL
from tests.hostile.test_budgets import batch_of, ended
from tests.support.probe import health_probe_apart

LEVELS = [20_000, 200_000, 2_000_000]
ANSWER_SECONDS = 10
# As the Realtime floods' (test_realtime_and_moderation.py): a refusal in the first slice
# that passes 64 levels leaves the loop nothing to wait for but the body's own bytes.
HEALTH_WAIT = 0.5
# (opens, closes) of one step of nesting, and the levels each step adds.
SHAPES = {"arrays": (b"[", b"]", 1), "objects": (b'{"k":', b"}", 1), "mixed": (b'[{"k":', b"}]", 2)}
TOO_DEEP = "more than 64 levels deep"


def deep(levels: int, shape: str = "arrays") -> bytes:
    opens, closes, each = SHAPES[shape]
    steps = levels // each
    return opens * steps + b"0" + closes * steps


def chat_with(metadata: bytes) -> bytes:
    head = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}).encode()
    return head[:-1] + b', "metadata": ' + metadata + b"}"


def assert_too_deep(error: dict) -> None:
    assert error["code"] == "invalid_body" and TOO_DEEP in error["message"], error


@pytest.mark.parametrize(
    "levels, shape, where",
    [(levels, "arrays", where) for levels in LEVELS for where in ("metadata", "whole")]
    # 2 M levels of objects would be 12 MB: a million (6 MB) fits under the limit.
    + [(levels, shape, "metadata") for shape in ("objects", "mixed") for levels in (20_000, 200_000)]
    + [(1_000_000, "objects", "metadata"), (2_000_000, "mixed", "metadata")],
)
def test_a_deep_chat_body_is_400_before_it_is_built(server, measured, levels, shape, where):
    nested = deep(levels, shape)
    body = chat_with(nested) if where == "metadata" else nested
    with measured(server) as growth, health_probe_apart(server.base_url) as probe:
        started = time.monotonic()
        answer = httpx.post(server.api + "/chat/completions", content=body, headers={"content-type": "application/json"}, timeout=120)
        took = time.monotonic() - started
    assert answer.status_code == 400, answer.text[:300]
    assert_too_deep(answer.json()["error"])
    print(f"\n{levels} levels of {shape} ({where}, {len(body)} bytes): 400 in {took:.2f} s; {growth.report()}; "
          f"/health waited at most {probe.longest * 1000:.0f} ms")
    assert took < ANSWER_SECONDS
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]


async def refused_on_socket(live, path: str, frame: bytes, realtime: bool) -> tuple[dict, dict, float]:
    """The error event answering ``frame``, the one answering a follow-up (the session
    still reads), and how long the first took."""
    async with websockets.connect(live.base_url.replace("http", "ws") + path, max_size=None, open_timeout=60) as ws:
        if realtime:
            assert json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] == "session.created"
        started = time.monotonic()
        await ws.send(frame.decode())
        errors = []
        async with asyncio.timeout(60):
            while len(errors) < 2:
                event = json.loads(await ws.recv())
                if event["type"] == "error":
                    errors.append(event)
                    if len(errors) == 1:
                        took = time.monotonic() - started
                        await ws.send("not json")
    return errors[0], errors[1], took


@pytest.mark.parametrize("levels", LEVELS)
def test_a_deep_response_create_is_an_error_event_before_it_is_built(server, measured, levels):
    frame = b'{"type": "response.create", "model": "' + MODEL.encode() + b'", "input": "Hi", "metadata": ' + deep(levels) + b"}"
    with measured(server) as growth, health_probe_apart(server.base_url) as probe:
        refused, after, took = asyncio.run(refused_on_socket(server, "/v1/responses", frame, realtime=False))
    assert (refused["status"], after["error"]["code"]) == (400, "invalid_event"), (refused, after)
    assert_too_deep(refused["error"])
    print(f"\nresponse.create, {levels} levels: error in {took:.2f} s; {growth.report()}; /health at most {probe.longest * 1000:.0f} ms")
    assert took < ANSWER_SECONDS
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]


@pytest.mark.parametrize("levels", [200_000, 2_000_000])
def test_a_deep_realtime_event_is_an_error_event_before_it_is_built(server, measured, levels):
    item = b'{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi", "x": ' + deep(levels, "mixed") + b"}]}"
    frame = b'{"type": "conversation.item.create", "event_id": "evt_deep", "item": ' + item + b"}"
    path = f"/v1/realtime?model={MODEL}"
    # Unmeasured: a session's first use starts the audio workers (their models: +450 MB).
    asyncio.run(refused_on_socket(server, path, b'{"type": "conversation.item.create", "item": ' + deep(100) + b"}", realtime=True))
    with measured(server) as growth, health_probe_apart(server.base_url) as probe:
        refused, after, took = asyncio.run(refused_on_socket(server, path, frame, realtime=True))
    assert after["error"]["code"] == "invalid_event", after
    assert_too_deep(refused["error"])
    print(f"\nrealtime event, {levels} levels: error in {took:.2f} s; {growth.report()}; /health at most {probe.longest * 1000:.0f} ms")
    assert took < ANSWER_SECONDS
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]


def test_deep_batch_lines_are_error_lines_before_they_are_built(server, measured):
    lines = [json.dumps({"custom_id": "fine", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}}).encode()]
    for levels in LEVELS:
        lines.append(b'{"custom_id": "deep-%d", "method": "POST", "url": "/v1/chat/completions", "body": ' % levels
                     + chat_with(deep(levels)) + b"}")
    with measured(server) as growth, health_probe_apart(server.base_url) as probe:
        started = time.monotonic()
        found = ended(server, batch_of(server, b"\n".join(lines) + b"\n"))
        took = time.monotonic() - started
    assert found.status == "failed", found
    assert [(error.code, error.line) for error in found.errors.data] == [("invalid_body", 2), ("invalid_body", 3), ("invalid_body", 4)]
    assert all(TOO_DEEP in error.message for error in found.errors.data)
    print(f"\nbatch of 20 k, 200 k, 2 M levels: failed in {took:.2f} s; {growth.report()}; /health at most {probe.longest * 1000:.0f} ms")
    assert took < ANSWER_SECONDS
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]
