"""A Realtime session starts with its models loaded (issue #41): ``session.created`` comes once
the models it uses are ready, so its first turn is answered as soon as the later ones, and a
session whose models cannot load fails at once, not at its first turn. One server for the
file, every model loaded on first use, its speech model one that cannot load (a Piper voice
package that is not installed)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
import websockets.sync.client

from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.realtime import SERVER_EVENT, events_until
from tests.support.server import LiveServer, access_lines, log_records, log_size, logged


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {
        "LLM_BACKEND_MODEL_LOAD": "lazy",
        "LLM_BACKEND_SPEECH_ENGINE": "piper",
        "LLM_BACKEND_SPEECH_PIPER_PACKAGE": "no-such-piper-voice",
    }
    with LiveServer(tmp_path_factory.mktemp("session-start"), env=env) as server:
        yield server


def states(live: LiveServer) -> dict[str, str]:
    listed = httpx.get(live.base_url + "/admin/models", timeout=60).json()["data"]
    return {status["id"]: status["state"] for status in listed}


def test_a_transcription_session_starts_with_its_speech_to_text_model_loaded(live):
    assert states(live)["whisper-base"] == "unloaded"
    with sdk(live).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
        loaded = states(live)
    assert loaded["whisper-base"] == "ready"
    assert loaded["piper"] == "unloaded" and loaded[MODEL] == "unloaded"  # nothing it does not use


def test_a_conversation_answering_in_text_starts_with_its_chat_model_loaded(live):
    secret = sdk(live).realtime.client_secrets.create(session={"type": "realtime", "model": MODEL, "output_modalities": ["text"]})
    with sdk(live, api_key=secret.value).realtime.connect(model=MODEL) as connection:
        events_until(connection, "session.created")
        loaded = states(live)
    assert loaded[MODEL] == "ready" and loaded["whisper-base"] == "ready"


def test_a_session_whose_speech_model_cannot_load_fails_before_it_starts(live):
    with sdk(live).realtime.connect(model=MODEL) as connection:
        first = connection.recv().model_dump(exclude_unset=True, by_alias=True)
    SERVER_EVENT.validate(first)
    assert first["type"] == "error", first  # not session.created, then a failure at the first turn
    assert first["error"]["code"] == "model_load_failed" and "piper" in first["error"]["message"]
    assert states(live)["piper"] == "error"


@pytest.fixture(scope="module")
def leaving(tmp_path_factory):
    """Its speech-to-text model unloaded until the test: a session waits for it to load."""
    with LiveServer(tmp_path_factory.mktemp("session-left"), env={"LLM_BACKEND_MODEL_LOAD": "lazy"}) as server:
        yield server


def test_a_client_that_leaves_before_its_session_starts_is_no_error_and_the_next_one_starts(leaving):
    since = log_size(leaving)
    url = leaving.base_url.replace("http", "ws", 1) + "/v1/realtime?intent=transcription"
    left = websockets.sync.client.connect(url)
    left.socket.shutdown(socket.SHUT_RDWR)  # gone while its session waits for Whisper to load
    left.socket.close()
    with sdk(leaving).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
    assert len(access_lines(leaving, "/v1/realtime", since=since, expect=2)) == 2
    records = log_records(leaving, since)
    assert [record["event"] for record in records if record["level"] in ("error", "critical")] == []


def test_a_client_gone_as_its_response_begins_is_no_error_of_ours(live):
    """A client that asks for a response and leaves at once: the response's first event met
    a closed connection, and the disconnect was logged as an unhandled error of the service
    (found in a full run's server logs). Now a send to a client that left sends nothing,
    and the session ends as its connection does. Several times: the response must begin
    before the server reads that the client left."""
    since = log_size(live)
    text = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hi."}]}
    for _ in range(6):
        secret = sdk(live).realtime.client_secrets.create(session={"type": "realtime", "model": MODEL, "output_modalities": ["text"]})
        with sdk(live, api_key=secret.value).realtime.connect(model=MODEL) as connection:
            events_until(connection, "session.created")
            connection.conversation.item.create(item=text)
            connection.response.create(response={"max_output_tokens": 4})
    ended = time.monotonic() + 30
    while sum(record.get("path") == "/v1/realtime" for record in log_records(live, since)) < 6 and time.monotonic() < ended:
        time.sleep(0.1)
    assert logged(live, since, "error") == []
