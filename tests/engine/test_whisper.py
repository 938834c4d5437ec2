"""Whisper in the audio worker, driven directly (``backends/audio/whisper.py``): a turn whose
language is not given is encoded once, not once to detect its language and again to
transcribe it (issue #41: 7.4 s instead of 3.9 s for a 4.8 s question on this machine)."""

from __future__ import annotations

import pytest

from llm_backend.backends.audio.transcriber import Transcriber
from llm_backend.settings import Settings
from tests.support.audio import librivox
from tests.support.models import whisper_dir


@pytest.fixture(scope="module")
def transcriber():
    window = Settings.model_fields["audio_window_seconds"].default
    return Transcriber(str(whisper_dir()), threads=1, parallel=1, max_seconds=3600, window_seconds=window)


def transcribed(transcriber: Transcriber, params: dict) -> tuple[str, dict, int]:
    """The text, the ``info`` event, and how many 30-second windows the encoder ran on."""
    model, events, encoded = transcriber.model, [], []
    encode = model.encode
    model.encode = lambda features: encoded.append(features) or encode(features)
    try:
        transcriber.run(params, events.append, lambda: False)
    finally:
        del model.encode
    text = "".join(event["segment"]["text"] for event in events if event["event"] == "segment")
    return text, next(event for event in events if event["event"] == "info"), len(encoded)


def test_a_turn_without_a_language_is_encoded_once_and_heard_as_with_its_language(transcriber):
    clip = librivox()[2][0]  # 5.3 s: one window
    detected, info, passes = transcribed(transcriber, {"path": str(clip)})
    assert passes == 1
    assert info["language"] == "en" and info["language_probability"] >= 0.8
    given, _, given_passes = transcribed(transcriber, {"path": str(clip), "language": "en"})
    assert given_passes == 1 and detected == given
