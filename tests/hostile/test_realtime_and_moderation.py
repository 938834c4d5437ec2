"""Hostile inputs to the Realtime API and to moderations, measured (``measured``): audio
floods into a session's buffer, events as large as a frame may be, and moderation inputs at
and past their bounds; while the Realtime ones run, a ``/health`` probe never waits past
250 ms (``tests/support/probe.py``)."""

from __future__ import annotations

import base64
import json

import httpx
from websockets.sync.client import connect

from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.probe import health_probe
from tests.support.realtime import next_error

HEALTH_WAIT = 0.25  # seconds a /health probe may wait while a Realtime client floods (issue #39)


def test_an_audio_flood_is_refused_at_the_buffers_bound(server, measured):
    second = bytes(48_000)  # 1 s of pcm16 at 24 kHz
    chunk = base64.b64encode(second * 20).decode()  # 20 s a frame
    with measured(server):
        with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as connection:
            connection.recv()  # session.created
            connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
            for _ in range(16):  # 320 s, past the 300 s a buffer holds
                connection.input_audio_buffer.append(audio=chunk)
            error = next_error(connection)
    assert error["error"]["code"] == "input_audio_buffer_full"


def first_session(live) -> None:
    """A session opened and heard before the measures: the first of a process imports
    onnxruntime and loads the VAD, beside the loop but holding the GIL for ~0.3 s while the C
    library loads - once per process (docs/REALTIME.md)."""
    with sdk(live).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        connection.recv()
        connection.input_audio_buffer.append(audio=base64.b64encode(bytes(48_000)).decode())
        connection.send({"type": "response.cancel"})  # not a transcription session's: its error comes once the audio was heard
        next_error(connection)


def raw_session(live, query: str):
    """A Realtime connection that sends frames as they are given: the frames are made before
    the measure, so the probe's thread (in this process) never waits for this one's JSON
    encoding of 8 MB."""
    return connect(live.base_url.replace("http://", "ws://") + "/v1/realtime?" + query, max_size=None)


def errors_of(socket, count: int) -> list[dict]:
    found = []
    while len(found) < count:
        event = json.loads(socket.recv(timeout=120))
        if event["type"] == "error":
            found.append(event["error"])
    return found


def test_an_audio_flood_never_holds_the_event_loop_and_runs_out_at_its_lead(server, measured):
    """Frames of 125 s of silence as fast as they go: decoded, resampled and heard by the
    VAD beside the event loop (five such frames used to hold /health for 3 s), and refused
    once the audio runs 300 s ahead of the clock (``realtime_audio_lead_seconds``: silence
    never fills the buffer, so it used to go on for ever)."""
    audio = base64.b64encode(bytes(6_000_000)).decode()  # 125 s of pcm16 at 24 kHz, 8 MB of base64
    frames = [json.dumps({"type": "input_audio_buffer.append", "event_id": f"evt_{n}", "audio": audio}) for n in range(5)]
    first_session(server)
    with measured(server), health_probe(server.base_url, interval=0.02) as probe:
        with raw_session(server, "intent=transcription") as socket:
            socket.recv(timeout=120)  # session.created: server_vad, silence dropped
            for frame in frames:
                socket.send(frame)
            refused = errors_of(socket, 3)
    assert [(error["code"], error["event_id"]) for error in refused] == [("input_audio_too_fast", f"evt_{n}") for n in (2, 3, 4)]
    print(f"\n/health: {len(probe.waits)} probes, the longest {probe.longest * 1000:.0f} ms")
    assert probe.longest <= HEALTH_WAIT


def test_events_as_large_as_a_frame_never_hold_the_event_loop(server, measured):
    """An event of 2.7 million empty objects (``json.loads`` alone: 1.7 s holding the GIL)
    is refused once counted past ``realtime_event_values``; a 7.5 MB text item is read
    beside the loop and refused past the conversation's bytes."""
    values = '{"type":"conversation.item.create","event_id":"evt_values","item":{"type":"message","role":"user","content":[' + ",".join(["{}"] * 2_700_000) + "]}}"
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a" * 7_500_000}]}
    text = json.dumps({"type": "conversation.item.create", "event_id": "evt_text", "item": item})
    first_session(server)
    with measured(server), health_probe(server.base_url, interval=0.02) as probe:
        with raw_session(server, f"model={MODEL}") as socket:
            socket.recv(timeout=120)
            socket.send(values)
            [too_many] = errors_of(socket, 1)
            socket.send(text)
            [too_big] = errors_of(socket, 1)
    assert too_many["code"] == "event_too_large"  # refused before it is read: its event_id unknown
    assert (too_big["code"], too_big["param"], too_big["event_id"]) == ("conversation_full", "item", "evt_text")
    print(f"\n/health: {len(probe.waits)} probes, the longest {probe.longest * 1000:.0f} ms")
    assert probe.longest <= HEALTH_WAIT


def test_moderation_inputs_at_and_past_their_bounds(server, measured):
    words = "the harbour office keeps the tide tables and the weather log " * 8192  # ~500 k characters
    with measured(server):
        many_tokens = httpx.post(server.api + "/moderations", json={"input": words[:524_288]}, timeout=120)
        too_long = httpx.post(server.api + "/moderations", json={"input": words * 2}, timeout=120)
        many_texts = httpx.post(server.api + "/moderations", json={"input": ["a calm sentence."] * 2000}, timeout=120)
    assert many_tokens.status_code == 400 and many_tokens.json()["error"]["code"] == "context_length_exceeded"
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "string_above_max_length"
    assert many_texts.status_code == 200 and len(many_texts.json()["results"]) == 2000
