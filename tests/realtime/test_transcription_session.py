"""Realtime transcription sessions (``/v1/realtime?intent=transcription``) through the
official SDK's ``client.realtime.connect()``: real speech (LibriVox clips, at 24 kHz pcm16
as OpenAI's clients send it) in, each server event checked against the OpenAI document."""

from __future__ import annotations

import wave

import pytest

from tests.support.audio import librivox, word_error_rate
from tests.support.clients import sdk
from tests.support.realtime import SERVER_EVENT, events_until, pcm24k, send_audio, silence

@pytest.fixture(scope="module")
def clips():
    return librivox()[:2]


def test_server_vad_cuts_turns_and_each_is_transcribed(server, clips):
    with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        [created] = events_until(connection, "session.created")
        assert created["session"]["type"] == "transcription"
        assert created["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        connection.session.update(
            session={"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "gpt-4o-transcribe"}}}}
        )
        [updated] = events_until(connection, "session.updated")
        assert updated["session"]["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
        send_audio(connection, silence(1) + pcm24k(clips[0][0]) + silence(1.5) + pcm24k(clips[1][0]) + silence(1.5))
        seen = events_until(connection, "conversation.item.input_audio_transcription.completed", 2)
    kinds = [event["type"] for event in seen]
    assert kinds.count("input_audio_buffer.speech_started") == 2 and kinds.count("input_audio_buffer.speech_stopped") == 2
    committed = [event for event in seen if event["type"] == "input_audio_buffer.committed"]
    assert committed[1]["previous_item_id"] == committed[0]["item_id"]
    transcripts = {event["item_id"]: event["transcript"] for event in seen if event["type"].endswith("transcription.completed")}
    deltas = {}
    for event in seen:
        if event["type"].endswith("transcription.delta"):
            deltas[event["item_id"]] = deltas.get(event["item_id"], "") + event["delta"]
    for (_, text), event in zip(clips, committed):
        assert word_error_rate(text, transcripts[event["item_id"]]) < 0.3
        assert deltas[event["item_id"]].strip() == transcripts[event["item_id"]]


def test_manual_commits_clear_and_mistakes_are_error_events(server, clips):
    with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
        connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        [updated] = events_until(connection, "session.updated")
        assert updated["session"]["audio"]["input"]["turn_detection"] is None
        connection.input_audio_buffer.commit()  # nothing buffered
        error = connection.recv().model_dump()
        assert error["type"] == "error" and error["error"]["code"] == "input_audio_buffer_commit_empty"
        send_audio(connection, pcm24k(clips[1][0]))
        connection.input_audio_buffer.clear()
        events_until(connection, "input_audio_buffer.cleared")
        send_audio(connection, pcm24k(clips[1][0]))
        connection.input_audio_buffer.commit()
        seen = events_until(connection, "conversation.item.input_audio_transcription.completed")
        assert word_error_rate(clips[1][1], seen[-1]["transcript"]) < 0.3
        assert "input_audio_buffer.speech_started" not in [event["type"] for event in seen]
        for mistake, param in [
            ({"type": "session.update", "session": {"type": "transcription", "bogus": 1}}, "session.bogus"),
            ({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"noise_reduction": {"type": "near_field"}}}}}, "session.audio.input.noise_reduction"),
            ({"type": "response.create", "event_id": "evt_mine"}, "type"),
            ({"type": "no.such.event"}, "type"),
        ]:
            connection.send(mistake)
            error = connection.recv().model_dump()
            SERVER_EVENT.validate(error)
            assert error["type"] == "error" and error["error"]["param"] == param, error
        assert error["error"]["event_id"] is None


def test_g711_audio_is_read(server, clips):
    import audioop  # the reference encoder (deprecated in the standard library, present in 3.11)

    with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
        connection.session.update(session={"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": None}}})
        events_until(connection, "session.updated")
        with wave.open(str(clips[1][0])) as clip:
            pcm8k = audioop.ratecv(clip.readframes(clip.getnframes()), 2, 1, 16000, 8000, None)[0]
        send_audio(connection, audioop.lin2ulaw(pcm8k, 2), chunk=800)
        connection.input_audio_buffer.commit()
        seen = events_until(connection, "conversation.item.input_audio_transcription.completed")
    assert word_error_rate(clips[1][1], seen[-1]["transcript"]) < 0.4




def test_a_session_ends_at_its_maximum_duration(start_server):
    import time

    # Nothing is transcribed or generated: no model loaded (a start without the engine's ~1 s).
    live = start_server(env={"LLM_BACKEND_REALTIME_SESSION_SECONDS": "2", "LLM_BACKEND_MODEL_LOAD": "lazy"})
    with sdk(live).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        [created] = events_until(connection, "session.created")
        assert created["session"]["expires_at"] <= time.time() + 3
        error = connection.recv().model_dump()  # nothing sent: the session runs out
    assert error["type"] == "error" and error["error"]["code"] == "session_expired"


def test_logprobs_come_when_asked(server, clips):
    with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
        connection.session.update(
            session={"type": "transcription", "include": ["item.input_audio_transcription.logprobs"], "audio": {"input": {"turn_detection": None}}}
        )
        events_until(connection, "session.updated")
        send_audio(connection, pcm24k(clips[1][0]))
        connection.input_audio_buffer.commit()
        completed = events_until(connection, "conversation.item.input_audio_transcription.completed")[-1]
    assert completed["logprobs"] and all(entry["logprob"] <= 0 for entry in completed["logprobs"])
    assert "".join(entry["token"] for entry in completed["logprobs"]).strip() == completed["transcript"]


def test_the_handshake_passes_the_edge(server):
    """The edge's rules hold for /v1/realtime as for every request: another site's page
    cannot open a session (http/edge.py)."""
    import asyncio

    import websockets

    async def open_from(origin: str) -> int:
        url = server.base_url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
        try:
            async with websockets.connect(url, origin=origin) as socket:
                return socket.response.status_code
        except websockets.exceptions.InvalidStatus as refused:
            return refused.response.status_code

    assert asyncio.run(open_from("http://evil.example")) == 403
    assert asyncio.run(open_from(server.base_url)) == 101


def test_a_pause_shorter_than_the_silence_does_not_cut_the_turn(server, clips):
    """A pause shorter than ``silence_duration_ms`` is part of the turn: one turn, its whole
    transcript."""
    with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
        # The clips have some silence of their own at each end: the turn ends after 1.2 s.
        detection = {"type": "server_vad", "silence_duration_ms": 1200}
        connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": detection}}})
        events_until(connection, "session.updated")
        send_audio(connection, silence(0.5) + pcm24k(clips[1][0]) + silence(0.2) + pcm24k(clips[0][0]) + silence(2))
        seen = events_until(connection, "conversation.item.input_audio_transcription.completed")
    assert [event["type"] for event in seen].count("input_audio_buffer.committed") == 1
    both = f"{clips[1][1]} {clips[0][1]}"
    assert word_error_rate(both, seen[-1]["transcript"]) < 0.3, seen[-1]["transcript"]
