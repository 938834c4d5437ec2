"""Hostile inputs to the Realtime API and to moderations, measured (``measured``): an audio
flood into a session's buffer, and moderation inputs at and past their bounds."""

from __future__ import annotations

import base64

import httpx

from tests.support.clients import sdk
from tests.support.realtime import next_error


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


def test_moderation_inputs_at_and_past_their_bounds(server, measured):
    words = "the harbour office keeps the tide tables and the weather log " * 8192  # ~500 k characters
    with measured(server):
        many_tokens = httpx.post(server.api + "/moderations", json={"input": words[:524_288]}, timeout=120)
        too_long = httpx.post(server.api + "/moderations", json={"input": words * 2}, timeout=120)
        many_texts = httpx.post(server.api + "/moderations", json={"input": ["a calm sentence."] * 2000}, timeout=120)
    assert many_tokens.status_code == 400 and many_tokens.json()["error"]["code"] == "context_length_exceeded"
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "string_above_max_length"
    assert many_texts.status_code == 200 and len(many_texts.json()["results"]) == 2000
