"""The Responses WebSocket mode through the official SDK's ``client.responses.connect()``
against a live server with the real model: the events of a streamed response
over one socket, several responses and continuations on it, lanes, errors as ``error``
events that leave the socket open, and the key checked at the handshake."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
import websockets
import websockets.sync.client

from tests.conftest import MODEL
from tests.support.clients import TERMINAL, async_sdk, keyed_server, sdk, until_terminal
from tests.support.server import access_lines, log_records, log_size

KEY = "ws-key"


@pytest.fixture(scope="module")
def live(server):
    return server


@pytest.fixture(scope="module")
def client(live) -> openai.OpenAI:
    return sdk(live, api_key=KEY)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A server that accepts only KEY (no model: the handshake is all it is asked for)."""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false"}
    with keyed_server(tmp_path_factory.mktemp("websocket-keys"), [KEY], env=env) as server:
        yield server


def test_a_response_over_the_socket_sends_the_streaming_events_in_order(client):
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="Say hello.", max_output_tokens=16)
        events = until_terminal(connection)
    types = [event.type for event in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert types[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text and events[-1].response.output_text == text


def test_two_turns_on_one_connection_continue_the_chain_and_are_stored(client):
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="My name is Ann. Say hi.", max_output_tokens=16)
        first = until_terminal(connection)[-1].response
        connection.response.create(
            model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=16
        )
        second = until_terminal(connection)[-1].response
    assert second.previous_response_id == first.id and second.id != first.id
    # The follow-up read the first turn, from the prompt cache.
    assert second.usage.input_tokens > first.usage.input_tokens
    assert second.usage.input_tokens_details.cached_tokens > 0
    assert client.responses.retrieve(second.id).model_dump() == second.model_dump()


def test_a_store_false_response_is_continued_on_its_own_socket_only(client):
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="My name is Ann. Say hi.", store=False, max_output_tokens=16)
        first = until_terminal(connection)[-1].response
        connection.response.create(
            model=MODEL, input="What is my name?", previous_response_id=first.id, store=False, max_output_tokens=16
        )
        second = until_terminal(connection)[-1].response
        # The socket remembers its last response only (OpenAI's one-response cache).
        connection.response.create(model=MODEL, input="Again?", previous_response_id=first.id, store=False, max_output_tokens=16)
        [evicted] = until_terminal(connection)
    assert second.previous_response_id == first.id and second.status in ("completed", "incomplete")
    # The follow-up read the first turn: its input and its answer.
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    assert evicted.type == "error" and evicted.error.code == "previous_response_not_found"
    with client.responses.connect() as other:
        other.response.create(model=MODEL, input="Hi", previous_response_id=second.id, store=False, max_output_tokens=16)
        [elsewhere] = until_terminal(other)
    assert elsewhere.type == "error" and elsewhere.error.code == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="Hi", previous_response_id=second.id, max_output_tokens=16)


def test_a_stored_response_continuing_a_remembered_one_keeps_the_whole_history(client):
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="My name is Ann. Say hi.", store=False, max_output_tokens=16)
        first = until_terminal(connection)[-1].response
        connection.response.create(model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=16)
        second = until_terminal(connection)[-1].response
    # Over HTTP later, its chain reads whole though its previous response was never stored.
    third = client.responses.create(model=MODEL, input="And now?", previous_response_id=second.id, max_output_tokens=16)
    assert third.usage.input_tokens > second.usage.input_tokens + second.usage.output_tokens


def test_a_client_that_leaves_mid_response_leaves_it_stored_as_incomplete(client):
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="Write a long story.", max_output_tokens=500)
        created = connection.recv()
        while connection.recv().type != "response.output_text.delta":
            pass
    # The socket is closed: the server stops generating and keeps what was sent (once it
    # has seen the close).
    deadline = time.monotonic() + 30
    while True:
        try:
            stored = client.responses.retrieve(created.response.id)
            break
        except openai.NotFoundError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert stored.status == "incomplete"
    assert stored.output_text and stored.output[0].status == "incomplete"


def test_an_invalid_event_is_answered_with_an_error_event_and_the_socket_stays_open(client):
    with client.responses.connect() as connection:
        connection.send({"type": "response.create", "model": MODEL, "input": 3})
        error = connection.recv()
        connection.response.create(model=MODEL, input="Hi", max_output_tokens=16)
        events = until_terminal(connection)
    assert error.type == "error" and error.status == 400
    assert (error.error.type, error.error.param) == ("invalid_request_error", "input")
    assert events[-1].type in ("response.completed", "response.incomplete")


def test_an_unknown_previous_response_id_is_an_error_event_on_its_lane(client):
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="Hi", previous_response_id="resp_unknown", stream_id="lane-1")
        error = connection.recv()
    assert (error.type, error.status, error.stream_id) == ("error", 404, "lane-1")
    assert (error.error.code, error.error.param) == ("previous_response_not_found", "previous_response_id")


def test_background_is_refused_in_the_websocket_mode(client):
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="Hi", background=True)
        error = connection.recv()
    assert (error.type, error.status, error.error.param) == ("error", 400, "background")


def test_a_frame_that_is_not_json_is_an_error_event(live):
    async def exchange():
        url = live.api.replace("http://", "ws://") + "/responses"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as socket:
            await socket.send("not json")
            return json.loads(await socket.recv())

    error = asyncio.run(exchange())
    assert (error["type"], error["status"], error["error"]["code"]) == ("error", 400, "invalid_event")


async def test_lanes_answer_side_by_side_each_event_naming_its_lane(live):
    client = async_sdk(live, api_key=KEY)
    async with client.responses.connect() as connection:
        for lane in ("a", "b"):
            await connection.response.create(model=MODEL, input="Count to three.", max_output_tokens=16, stream_id=lane)
        finished: dict[str, str] = {}
        lanes_seen = set()
        async for event in connection:
            lanes_seen.add(event.stream_id)
            if event.type in TERMINAL:
                finished[event.stream_id] = event.type
                if len(finished) == 2:
                    break
    assert lanes_seen == {"a", "b"}
    assert set(finished.values()) <= {"response.completed", "response.incomplete"}


def test_a_bad_key_is_refused_at_the_handshake_with_openais_error(keyed):
    client = sdk(keyed, api_key="wrong-key")
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        with client.responses.connect():
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/realtime?model=gpt-realtime"])
def test_a_handshake_refused_for_its_key_is_not_logged_as_an_error(keyed, path):
    # uvicorn's websockets-sansio protocol logged "ASGI callable returned without completing
    # handshake." at error after each refusal (http/socket_denial.py).
    since = log_size(keyed)
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        with websockets.sync.client.connect(keyed.base_url.replace("http", "ws", 1) + path,
                                            additional_headers={"authorization": "Bearer wrong-key"}):
            pass
    assert refused.value.response.status_code == 401
    access_lines(keyed, path.split("?")[0], since=since, expect=1)
    # A request after it, logged once the handshake's task has logged all it logs.
    assert httpx.get(keyed.api + "/models", timeout=10).status_code == 401
    access_lines(keyed, "/v1/models", since=since, expect=1)
    records = log_records(keyed, since)
    assert [record for record in records if record["level"] in ("error", "critical")] == []
    assert any("WebSocket" in record["event"] and "401" in record["event"] for record in records)


def test_every_frame_is_a_responses_server_event_of_the_spec(client):
    from tests.conformance.checks import _payload_validator, without_null_usage

    validator = _payload_validator("ResponsesServerEvent")
    frames = []
    with client.responses.connect() as connection:
        connection.send({"type": "response.create", "model": MODEL, "input": "Hi", "temperature": 9})
        frames.append(json.loads(connection.recv_bytes()))
        connection.response.create(model=MODEL, input="Hi", max_output_tokens=16, stream_id="checked")
        while not frames or frames[-1]["type"] not in TERMINAL[:-1]:
            frames.append(json.loads(connection.recv_bytes()))
    assert frames[0]["type"] == "error" and len(frames) > 4
    for frame in frames:
        validator.validate(without_null_usage(frame))


def test_a_warm_up_prepares_the_prompt_and_the_turn_that_continues_it_finds_it_cached(client):
    # ``generate: false`` (OpenAI's SDKs have it; the vendored document does not): Codex sends
    # one as a session starts. Refused before (400 naming it), so its turn computed it all.
    instructions = "You are a careful assistant. " * 40
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, instructions=instructions, input="My name is Ann.", store=False, generate=False)
        warm = until_terminal(connection)
        connection.response.create(
            model=MODEL, instructions=instructions, input="What is my name?", previous_response_id=warm[-1].response.id,
            store=False, max_output_tokens=16,
        )
        turn = until_terminal(connection)[-1].response
    assert [event.type for event in warm if event.type != "keepalive"] == ["response.created", "response.in_progress", "response.completed"]
    prepared = warm[-1].response
    assert prepared.status == "completed" and prepared.output == [] and prepared.usage.output_tokens == 0
    assert prepared.usage.input_tokens > 200
    assert turn.previous_response_id == prepared.id and turn.status in ("completed", "incomplete")
    # The warm-up's prompt read from the cache, but for its last message (under 16 tokens) and
    # up to 64 before it: reuse is exact, up to the end of a prompt's first part or 64 tokens
    # before it (docs/SCALING.md, "Exact"). Without the warm-up, none of it.
    assert turn.usage.input_tokens_details.cached_tokens >= prepared.usage.input_tokens - 16 - 64


@pytest.mark.parametrize("event, param", [
    ({"generate": "no"}, "generate"),
    ({"generate": False, "tools": [{"type": "mcp", "server_label": "x", "server_url": "https://mcp.example.com/mcp"}]}, "generate"),
], ids=["not-boolean", "mcp-tools"])
def test_a_warm_up_that_cannot_be_honoured_is_an_error_event_naming_generate(client, event, param):
    with client.responses.connect() as connection:
        connection.send({"type": "response.create", "model": MODEL, "input": "Hi", **event})
        [refused] = until_terminal(connection)
    assert refused.type == "error" and refused.error.param == param
