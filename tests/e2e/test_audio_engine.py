"""The audio workers' supervision, as the chat engines': a worker killed mid-request fails
only that request (503) and is restarted; a full line answers 429; a client that leaves
stops its request in the worker (at the next segment or sentence), seen as the worker's
CPU going still. One server for the module: lazy chat model, no waiting line."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import wave

import httpx
import pytest

from tests.support.audio import librivox, librivox_joined
from tests.support.server import LiveServer, cpu_seconds


LONG = librivox_joined()[0]
SHORT = librivox()[1][0].read_bytes()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"LLM_BACKEND_MODEL_LOAD": "lazy", "LLM_BACKEND_QUEUE_SIZE": "0"}
    with LiveServer(tmp_path_factory.mktemp("audio-engine"), env=env) as server:
        yield server


def transcribe(live: LiveServer, audio: bytes, **options) -> httpx.Response:
    return httpx.post(
        live.api + "/audio/transcriptions", data={"model": "whisper-1"}, files={"file": ("a.wav", audio)}, timeout=300, **options
    )


def audio_workers(live: LiveServer, kind: bytes = b"transcription") -> list[int]:
    return live.worker_pids(b"audio.worker", kind)


def in_background(call) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    return thread, result


def test_a_killed_worker_fails_its_request_and_is_restarted(live):
    assert transcribe(live, SHORT).status_code == 200  # loads the model
    [pid] = audio_workers(live)
    thread, result = in_background(lambda: transcribe(live, LONG))
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    thread.join()
    assert result[0].status_code == 503 and result[0].json()["error"]["code"] == "engine_unavailable"
    assert transcribe(live, SHORT).status_code == 200
    assert audio_workers(live) and audio_workers(live) != [pid]


def test_a_request_beyond_the_line_is_429(live):
    transcribe(live, SHORT)
    thread, result = in_background(lambda: transcribe(live, LONG))
    time.sleep(1.0)
    refused = transcribe(live, SHORT)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    thread.join()
    assert result[0].status_code == 200


def test_an_audio_model_is_loaded_and_unloaded_by_the_admin_operations(live):
    unloaded = httpx.post(live.base_url + "/admin/models/tts-1/unload", timeout=60).json()
    assert (unloaded["id"], unloaded["state"]) == ("hibari", "unloaded")
    listed = {status["id"]: status for status in httpx.get(live.base_url + "/admin/models", timeout=30).json()["data"]}
    assert listed["whisper-base"]["aliases"][0] == "whisper-1" and listed["hibari"]["state"] == "unloaded"
    loaded = httpx.post(live.base_url + "/admin/models/hibari/load", timeout=120).json()
    assert loaded["state"] == "ready" and loaded["loads"] >= 1


def cpu_after_leaving(pid: int) -> float:
    """The worker's CPU seconds over 2 s, once the piece in hand (a sentence, a segment) has
    had a second to end: still, if the request stopped; over a second, if it went on."""
    time.sleep(1.0)
    before = cpu_seconds(pid)
    time.sleep(2.0)
    return cpu_seconds(pid) - before


def test_a_client_that_leaves_a_long_speech_stops_its_synthesis(live):
    text = " ".join(f"This is sentence number {i} of a long text that is read aloud." for i in range(50))
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}
    with httpx.stream("POST", live.api + "/audio/speech", json=body, timeout=120) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # the first sentence's audio: 49 to go
        [pid] = audio_workers(live, b"speech")
    assert cpu_after_leaving(pid) < 0.3
    assert httpx.post(live.api + "/audio/speech", json={**body, "input": "Still here."}, timeout=60).status_code == 200


def test_a_client_that_leaves_a_long_streamed_transcription_stops_it(live):
    # Whisper decodes 30-second windows and yields a window's segments once it is decoded, so
    # a cancel stops the request after the window in hand: the worker's CPU after the client
    # leaves is bounded by about two windows' worth, where going on would cost eight more.
    audio = wave_of(LONG, times=10)  # about 250 s: nine windows
    files, data = {"file": ("long.wav", audio)}, {"model": "whisper-1", "stream": "true"}
    assert transcribe(live, SHORT).status_code == 200  # the worker is up: its loading is not counted
    [pid] = audio_workers(live)
    idle = cpu_seconds(pid)
    with httpx.stream("POST", live.api + "/audio/transcriptions", data=data, files=files, timeout=300) as response:
        assert response.status_code == 200
        next(line for line in response.iter_lines() if line.startswith("data: "))  # the first segment
        first_window = cpu_seconds(pid) - idle
        left = cpu_seconds(pid)
    still = cpu_when_still(pid, within=120)
    assert still - left < 2 * first_window + 0.5, (still - left, first_window)
    assert transcribe(live, SHORT).status_code == 200


def cpu_when_still(pid: int, within: float) -> float:
    """The worker's CPU seconds once a whole second passes with (almost) none used."""
    deadline = time.monotonic() + within
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.1:
            return now
        before = now
    raise AssertionError(f"the worker still computes {within} s after its client left")


def wave_of(clip: bytes, times: int) -> bytes:
    with wave.open(io.BytesIO(clip)) as source:
        frames, rate = source.readframes(source.getnframes()), source.getframerate()
    out = io.BytesIO()
    with wave.open(out, "wb") as joined:
        joined.setnchannels(1)
        joined.setsampwidth(2)
        joined.setframerate(rate)
        joined.writeframes(frames * times)
    return out.getvalue()
