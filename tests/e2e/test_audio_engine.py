"""The audio workers' supervision, as the chat engines': a worker killed mid-request fails
only that request (503) and is restarted; a full line answers 429. One server for the
module: lazy chat model, no waiting line. (A client that leaves cancels its request at the
worker's next segment or sentence: Whisper decodes 30-second windows, so these clips,
shorter than one, cannot show it.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.audio import librivox, librivox_joined
from tests.support.server import LiveServer


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


def audio_workers(live: LiveServer) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if ppid == live.process.pid and b"audio.worker" in cmdline and b"transcription" in cmdline:
                pids.append(int(entry.name))
    return pids


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
