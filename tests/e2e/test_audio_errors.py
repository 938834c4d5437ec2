"""Bad input to the Audio operations: a 400 (413 past OpenAI's 25 MB) naming the parameter,
in OpenAI's shape; no upload left behind; nothing logged at error level."""

from __future__ import annotations


import httpx
import pytest

from tests.support.audio import librivox
from tests.support.server import log_records, log_size

CLIP = librivox()[1][0].read_bytes()  # 3 s of a human voice


@pytest.fixture(autouse=True)
def quietly(server):
    """No upload left in the data dir, no error logged, by a refused request."""
    since = log_size(server)
    yield
    assert not list((server.workdir / "data" / "tmp").glob("audio-*"))
    errors = [record for record in log_records(server, since) if record.get("level") == "error"]
    assert errors == []


def refused(response: httpx.Response, status: int, param: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
    return error


def transcribe(server, content: bytes, filename: str = "clip.wav", **fields) -> httpx.Response:
    data = {"model": "whisper-1", **fields}
    return httpx.post(server.api + "/audio/transcriptions", data=data, files={"file": (filename, content)}, timeout=120)


def speak(server, **fields) -> httpx.Response:
    body = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **fields}
    return httpx.post(server.api + "/audio/speech", json=body, timeout=120)


@pytest.mark.parametrize(
    "content",
    [b"this is plain text, not audio\n" * 40, CLIP[:44], b"\x00" * 4096],
    ids=["text", "truncated-to-its-header", "zeros"],
)
def test_a_file_that_is_not_readable_audio_is_400_naming_file(server, content):
    refused(transcribe(server, content), 400, "file")


def test_an_empty_file_is_400_naming_file(server):
    refused(transcribe(server, b""), 400, "file")


def test_a_file_over_25_mb_is_413_as_openai_answers(server):
    error = refused(transcribe(server, CLIP + b"\x00" * (25 * 1024 * 1024)), 413, "file")
    assert error["message"].startswith("Maximum content size limit (26214400) exceeded")


def test_a_translation_of_an_unreadable_file_is_400_naming_file(server):
    response = httpx.post(
        server.api + "/audio/translations", data={"model": "whisper-1"}, files={"file": ("a.mp3", b"ID3 nope")}, timeout=60
    )
    refused(response, 400, "file")


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"response_format": "docx"}, "response_format"),
        ({"language": "klingon"}, "language"),
        ({"response_format": "srt", "stream": "true"}, "stream"),
        ({"include[]": "logprobs", "response_format": "text"}, "include"),
        ({"timestamp_granularities[]": "word"}, "timestamp_granularities"),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"known_speaker_names[]": "agent"}, "known_speaker_names"),
        ({"chunking_strategy[type]": "client_vad"}, "chunking_strategy"),
        ({"temperature": "hot"}, "temperature"),
    ],
)
def test_a_transcription_parameter_the_model_cannot_honour_is_400_naming_it(server, fields, param):
    refused(transcribe(server, CLIP, **fields), 400, param)


def test_a_text_model_is_not_a_transcription_model(server):
    refused(transcribe(server, CLIP, model="smollm2"), 400, "model")


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"voice": "darth"}, "voice"),
        ({"voice": {"id": "voice_1234"}}, "voice"),
        ({"response_format": "ogg"}, "response_format"),
        ({"input": "x" * 4097}, "input"),
        ({"input": " "}, "input"),
        ({"speed": 5}, "speed"),
        ({"instructions": "Whisper it."}, "instructions"),
        ({"model": "whisper-1"}, "model"),
    ],
)
def test_a_speech_parameter_out_of_bounds_is_400_naming_it(server, fields, param):
    refused(speak(server, **fields), 400, param)
