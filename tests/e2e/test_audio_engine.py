"""The audio workers' supervision, as the chat engines': a worker killed mid-request fails
only that request (503) and is restarted; a full line answers 429; a client that leaves
stops its request in the worker (at the next segment or sentence), seen as the worker's
CPU going still; a transcription takes every core only while nothing else computes. One
server for the module: lazy chat model, no waiting line, audio workers on one thread (two
when a transcription runs alone), whatever the machine's cores.

Nothing here waits a guessed time: a request is known to be at work when its worker has used
CPU on it, and over when the worker's CPU goes still, however busy the machine is."""

from __future__ import annotations

import io
import os
import signal
import threading
import wave

import httpx
import pytest

from tests.support.audio import librivox, librivox_joined
from tests.conftest import MODEL
from tests.support.server import LiveServer, computing, cpu_seconds, cpu_when_still, thread_cpu_seconds


LONG = librivox_joined()[0]
SHORT = librivox()[1][0].read_bytes()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"LLM_BACKEND_MODEL_LOAD": "lazy", "LLM_BACKEND_QUEUE_SIZE": "0", "LLM_BACKEND_AUDIO_THREADS": "1", "LLM_BACKEND_AUDIO_THREADS_ALONE": "2"}
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
    idle = cpu_seconds(pid)
    thread, result = in_background(lambda: transcribe(live, LONG))
    computing(pid, idle)  # LONG takes many seconds of CPU: it is mid-request now
    os.kill(pid, signal.SIGKILL)
    thread.join()
    assert result[0].status_code == 503 and result[0].json()["error"]["code"] == "engine_unavailable"
    assert transcribe(live, SHORT).status_code == 200
    assert audio_workers(live) and audio_workers(live) != [pid]


def test_a_request_beyond_the_line_is_429(live):
    # Its worker up, through the admin operation: a no-op once loaded, where a transcription
    # to bring it up cost 1.1 CPU-s each time.
    assert httpx.post(live.base_url + "/admin/models/whisper-1/load", timeout=120).json()["state"] == "ready"
    [pid] = audio_workers(live)
    idle = cpu_seconds(pid)
    thread, result = in_background(lambda: transcribe(live, LONG))
    computing(pid, idle)  # LONG holds the one place now
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


def test_a_client_that_leaves_a_long_speech_stops_its_synthesis(live):
    # A cancel stops the synthesis before its next sentence: the worker's CPU after the
    # client leaves is bounded by a few sentences' worth, where going on would cost 49 more.
    text = " ".join(f"This is sentence number {i} of a long text that is read aloud." for i in range(50))
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}
    assert httpx.post(live.api + "/audio/speech", json={**body, "input": "Up."}, timeout=300).status_code == 200
    [pid] = audio_workers(live, b"speech")
    idle = cpu_seconds(pid)
    with httpx.stream("POST", live.api + "/audio/speech", json=body, timeout=300) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # the first sentence's audio: 49 to go
        first_sentence = cpu_seconds(pid) - idle
        left = cpu_seconds(pid)
    still = cpu_when_still(pid)
    assert still - left < 5 * first_sentence + 0.3, (still - left, first_sentence)
    assert httpx.post(live.api + "/audio/speech", json={**body, "input": "Still here."}, timeout=300).status_code == 200


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
    still = cpu_when_still(pid)
    assert still - left < 2 * first_window + 0.5, (still - left, first_window)
    assert transcribe(live, SHORT).status_code == 200


def threads_at_work(pid: int, work) -> int:
    """How many of the worker's threads did a fifth or more of its CPU work while ``work`` ran."""
    before = thread_cpu_seconds(pid)
    work()
    spent = {tid: seconds - before.get(tid, 0.0) for tid, seconds in thread_cpu_seconds(pid).items()}
    total = sum(spent.values())
    return sum(seconds >= total / 5 for seconds in spent.values())


def test_a_transcription_takes_every_core_only_while_nothing_else_computes(live):
    # Issue #41: Whisper base on a 4.8 s question took 3.9 s on one of this machine's two
    # cores, 2.2 s on both; beside a decoding chat it leaves that chat its core. A short
    # question, the case in point: its 30 s window's encoder splits ~0.55/0.5 CPU-s over the
    # two threads alone, ~1.1/0.0 beside the chat (a fifth is the bar); LONG cost 3 CPU-s a
    # time, and the chat decoded on through the second.
    assert transcribe(live, SHORT).status_code == 200  # loaded
    [pid] = audio_workers(live)
    assert threads_at_work(pid, lambda: transcribe(live, SHORT)) == 2
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Write a long story about a dragon."}], "max_tokens": 400, "stream": True}
    with httpx.stream("POST", live.api + "/chat/completions", json=body, timeout=300) as chat:
        lines = chat.iter_lines()  # held: dropping it would close the stream, and the chat with it
        next(line for line in lines if '"content":"' in line and '"content":""' not in line)  # decoding now
        assert threads_at_work(pid, lambda: transcribe(live, SHORT)) == 1


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
