"""Audio bounded by its budget, not by what it expands to (issue #33, seen live: a 21 KB FLAC
of two hours of digital silence drove the audio worker to 6.2 GB, decoded whole before the
first segment). The length a container declares is checked before decoding, the decoded
samples while decoding (a header that lies is caught), and the audio is transcribed in
windows: memory stays that of a window at any length. The same path serves chat's
``input_audio``. Files are made here with PyAV: real FLAC, Ogg and ADTS AAC streams."""

from __future__ import annotations

import base64
import functools
import io
import time
import wave

import av
import httpx
import numpy as np
import pytest

from tests.support.audio import librivox, wav_16k, word_error_rate
from tests.support.clients import sdk

MiB = 1 << 20


@functools.cache  # two hours of FLAC silence take 2 s to encode, and two cases send them
def encoded(fmt: str, codec: str, rate: int, seconds: float, loud: float = 0.0, bitrate: int | None = None) -> bytes:
    """``seconds`` of silence (or noise as ``loud``) in ``fmt`` with ``codec``."""
    out = io.BytesIO()
    planar = codec not in ("flac",)
    frame = 1024 if codec == "aac" else 4096
    rng = np.random.default_rng(0)
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        if bitrate:
            stream.bit_rate = bitrate
        for index in range(int(seconds * rate / frame)):
            if planar:
                data = (rng.standard_normal((1, frame)) * loud).astype(np.float32)
                piece = av.AudioFrame.from_ndarray(data, format="fltp", layout="mono")
            else:
                piece = av.AudioFrame.from_ndarray(np.zeros((1, frame), np.int16), format="s16", layout="mono")
            piece.sample_rate, piece.pts = rate, index * frame
            for packet in stream.encode(piece):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def transcribe(live, name: str, content: bytes, timeout: float = 300) -> httpx.Response:
    return httpx.post(live.api + "/audio/transcriptions", data={"model": "whisper-1"}, files={"file": (name, content)}, timeout=timeout)


def warm(live) -> float:
    """The audio worker loads its model on first use: loaded before a case is measured, so
    the case's growth is its own, not the model's. Returns the pace this machine transcribes
    at now (seconds per second of audio, the load included: an upper bound), for budgets
    that follow the work asked, however busy the machine is (a fixed 120 s read timeout
    failed under a load of 6, issue #41). Warmed on a 3 s clip: Whisper computes a 30 s
    window for it all the same, so the pace is a looser upper bound than the 27 s of clips
    gave, for a fraction of their decoding."""
    if getattr(live, "audio_pace", None) is None:
        content = librivox()[1][0].read_bytes()
        started = time.monotonic()
        assert transcribe(live, "warm.wav", content).status_code == 200
        live.audio_pace = (time.monotonic() - started) / ((len(content) - 44) / 32000)
    return live.audio_pace


def budget(live, seconds: float) -> float:
    """Seconds a transcription of ``seconds`` of audio may take here: three times the pace
    measured, and never under two minutes."""
    return max(120.0, 3 * warm(live) * seconds)


def assert_too_long(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text[:300]
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == ("file", "audio_too_long"), error


# The budgeted server's length budget and window: every bound below is the same at 30 s
# windows as at the default 120 s (an edge crossed, a budget passed many times over, a
# worker freed within a window), at a quarter of the audio (the file took 103 s of the suite
# with 300 s and 120 s windows: 240 s of silence transcribed before a lie was caught).
MAX_SECONDS, WINDOW = 90, 30


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    """A server allowing 90 s of audio in 30 s windows: the decoded-length cases stay fast.
    Its cases only transcribe: the chat model is never loaded (lazy)."""
    from tests.support.server import LiveServer

    env = {
        "LLM_BACKEND_MAX_AUDIO_SECONDS": str(MAX_SECONDS),
        "LLM_BACKEND_AUDIO_WINDOW_SECONDS": str(WINDOW),
        "LLM_BACKEND_MODEL_LOAD": "lazy",
    }
    with LiveServer(tmp_path_factory.mktemp("audio-budget"), env=env) as live:
        yield live


@pytest.mark.parametrize(
    "name, fmt, codec", [("silence.flac", "flac", "flac"), ("silence.ogg", "ogg", "flac")], ids=["flac", "ogg"]
)
def test_two_hours_of_silence_is_refused_before_decoding(server, measured, name, fmt, codec):
    content = encoded(fmt, codec, 8000, 7200)
    assert len(content) < 2 * MiB  # small on the wire, 2 h once decoded
    warm(server)
    started = time.monotonic()
    with measured(server):
        answer = transcribe(server, name, content)
    assert_too_long(answer)
    assert time.monotonic() - started < 60


def test_a_stream_whose_declared_length_lies_is_stopped_at_the_budget(budgeted, measured):
    """ADTS AAC declares no length: the demuxer estimates it from the first frames' bitrate.
    Three loud seconds at 256 kb/s, then 20 minutes of silence at 8 kb/s, read as 45 s."""
    content = encoded("adts", "aac", 8000, 3, loud=0.5, bitrate=256_000) + encoded("adts", "aac", 8000, 1200, bitrate=8000)
    assert av.open(io.BytesIO(content)).duration / 1e6 < MAX_SECONDS  # the lie: 13 times shorter than the truth
    warm(budgeted)
    with measured(budgeted):
        assert_too_long(transcribe(budgeted, "lying.aac", content))


# Claims two seconds, not one: Whisper computed 6.5 CPU-s on one second of this silence
# here, 1.4 on two (either way a claim 30 times shorter than the bytes).
@pytest.mark.parametrize("declared, real", [(7200, 2), (2, 60)], ids=["claims-hours", "claims-seconds"])
def test_a_wav_header_that_lies_about_its_length_is_read_as_what_it_holds(budgeted, measured, declared, real):
    """The data chunk's size says one length, the file holds another: the decoder reads no
    more than the file holds (nor than the header allows), so neither the claim nor the bytes
    can make it decode past what is there."""
    rate = 8000
    data = bytes([128]) * (real * rate)  # 8-bit silence
    size = min(declared * rate, 0xFFFFFFFF - 36)
    header = b"RIFF" + (36 + size).to_bytes(4, "little") + b"WAVE" + b"fmt " + (16).to_bytes(4, "little")
    header += (1).to_bytes(2, "little") * 2 + rate.to_bytes(4, "little") * 2 + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    content = header + b"data" + size.to_bytes(4, "little") + data
    warm(budgeted)
    with measured(budgeted):
        answer = transcribe(budgeted, "lying.wav", content)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["usage"]["seconds"] <= min(declared, real) + 1


def test_input_audio_in_chat_takes_the_same_path(server, measured):
    silence = encoded("flac", "flac", 8000, 7200)
    part = {"type": "input_audio", "input_audio": {"data": base64.b64encode(silence).decode(), "format": "wav"}}
    body = {"model": "smollm2", "messages": [{"role": "user", "content": [part]}], "max_tokens": 2}
    warm(server)
    with measured(server):
        answer = httpx.post(server.api + "/chat/completions", json=body, timeout=300)
    assert answer.status_code == 400, answer.text[:300]
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("audio_too_long", "messages[0].content[0].input_audio.data")


def long_recording(seconds: float) -> tuple[bytes, str]:
    """The LibriVox clips read one after another until ``seconds``: a 16 kHz WAV and its text."""
    frames, texts = b"", []
    while len(frames) < seconds * 32000:
        for path, text in librivox():
            with wave.open(str(path)) as clip:
                frames += clip.readframes(clip.getnframes()) + bytes(16000)  # half a second apart
            texts.append(text)
    return wav_16k(frames), " ".join(texts)


def test_a_recording_longer_than_a_window_is_transcribed_whole_in_bounded_memory(budgeted, measured):
    """Past a window (30 s here) the audio is transcribed in windows: nothing is lost or said
    twice at their edges, and the timestamps run on across them."""
    # 54 s (the clips twice): one window's edge (at 30 s) to cross; a longer recording tests
    # nothing more here (it was 162 s across a 120 s edge: 39 s of the suite).
    content, reference = long_recording(45)
    seconds = (len(content) - 44) / 32000
    assert WINDOW < seconds <= MAX_SECONDS
    with measured(budgeted):
        transcript = sdk(budgeted, timeout=budget(budgeted, seconds)).audio.transcriptions.create(
            model="whisper-1", file=("long.wav", content), response_format="verbose_json"
        )
    assert transcript.duration > seconds - 2
    assert word_error_rate(reference, transcript.text) < 0.2, transcript.text
    starts = [segment.start for segment in transcript.segments]
    assert starts == sorted(starts) and transcript.segments[-1].end > seconds - 10
    assert [segment.id for segment in transcript.segments] == list(range(len(transcript.segments)))


def test_a_client_that_leaves_frees_the_worker_within_a_window(budgeted):
    content, _ = long_recording(MAX_SECONDS - 10)  # 81 s: all but the first window left behind
    short = long_recording(1)[0]  # 27 s
    warm(budgeted)
    started = time.monotonic()
    assert transcribe(budgeted, "short.wav", short, timeout=budget(budgeted, 27)).status_code == 200
    pace = (time.monotonic() - started) / 27  # now, the model loaded
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(budgeted.api + "/audio/transcriptions", data={"model": "whisper-1"}, files={"file": ("l.wav", content)}, timeout=3)
    started = time.monotonic()
    answer = transcribe(budgeted, "short.wav", short, timeout=budget(budgeted, 300))
    assert answer.status_code == 200, answer.text[:300]
    # After at most the 30 s window in hand (57 s of audio with this one), not after all
    # 81 s left behind (108 s): bounded by the pace just measured, with room for a busier moment.
    assert time.monotonic() - started < 1.5 * pace * (WINDOW + 27)
