"""Piper, the optional speech engine (``speech_engine: piper``, the ``piper`` extra: GPL-3.0,
so never the default nor in the image), with its PyPI voice ``en_US-joe-medium`` (22.05 kHz):
the same operation, formats and streaming as hibari's, pcm resampled to OpenAI's 24 kHz,
and speech that Whisper (served beside it) reads back. One server for the module."""

from __future__ import annotations

import base64
import json
import statistics

import httpx
import openai
import pytest

from tests.support.audio import decoded, round_trip_word_error_rate
from tests.support.clients import sdk
from tests.support.server import LiveServer

VOICE = "en_US-joe-medium"
THREE = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. It is easy to tell the depth of a well."


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"LLM_BACKEND_MODEL_LOAD": "lazy", "LLM_BACKEND_SPEECH_ENGINE": "piper"}
    with LiveServer(tmp_path_factory.mktemp("audio-piper"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def client(live):
    return sdk(live, api_key="anything", timeout=300)


def test_the_piper_model_is_listed_under_the_speech_aliases(client):
    ids = {model.id for model in client.models.list()}
    assert {"piper", "tts-1", "gpt-4o-mini-tts"} <= ids and "hibari" not in ids


@pytest.mark.parametrize("response_format, codec, rate", [("wav", "pcm_s16le", 22050), ("mp3", "mp3float", 22050), ("opus", "opus", 48000)])
def test_speech_decodes_at_the_voice_rate_and_grows_with_the_text(client, response_format, codec, rate):
    short = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.", response_format=response_format)
    long = client.audio.speech.create(model="piper", voice=VOICE, input="Hello. " + THREE, response_format=response_format)
    (short_codec, short_rate, short_seconds), (_, _, long_seconds) = decoded(short.content), decoded(long.content)
    assert (short_codec, short_rate) == (codec, rate)
    assert 0.2 < short_seconds < 2 and long_seconds > short_seconds + 3


def test_pcm_is_resampled_to_openais_24_khz_and_speed_shortens_it(client):
    # Piper draws each phoneme's length (VITS's noise_w): one synthesis of the text lasted 6.79 s
    # and the next 6.41 s (CI, at load), so each side is the median of three; pcm left at the
    # voice's 22.05 kHz would read 8 % short at 24 kHz.
    def speech(**options) -> bytes:
        return client.audio.speech.create(model="tts-1", voice="alloy", input=THREE, **options).content

    seconds = statistics.median(decoded(speech(response_format="wav"))[2] for _ in range(3))
    pcms = [speech(response_format="pcm") for _ in range(3)]
    faster = speech(response_format="pcm", speed=2.0)
    assert all(len(pcm) % 2 == 0 for pcm in pcms)
    pcm_seconds = statistics.median(len(pcm) / 2 / 24000 for pcm in pcms)
    assert abs(pcm_seconds - seconds) < 0.05 * seconds  # read at 24 kHz, it lasts as long
    assert len(faster) < 0.7 * min(len(pcm) for pcm in pcms)


def test_a_voice_the_engine_lacks_is_refused_naming_voice(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.speech.create(model="tts-1", voice="heart", input="Hello.")
    assert refused.value.body["param"] == "voice"


def test_sentences_stream_one_by_one_as_sse(live):
    body = {"model": "tts-1", "voice": "alloy", "input": THREE, "response_format": "pcm", "stream_format": "sse"}
    with httpx.stream("POST", live.api + "/audio/speech", json=body, timeout=120) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    deltas = [event for event in events if event["type"] == "speech.audio.delta"]
    assert len(deltas) >= 3 and events[-1]["type"] == "speech.audio.done"
    assert sum(len(base64.b64decode(event["audio"])) for event in deltas) > 2 * 24000 * 3
    assert events[-1]["usage"]["input_tokens"] > 50  # the phonemes read


def test_piper_speech_transcribed_back_has_a_word_error_rate_under_fifteen_percent(client):
    # Piper samples its voice (VITS noise): the same 20 sentences read back at 5.6-11.3 %
    # over ten runs here, so its bar is wider than hibari's deterministic 10 %.
    rate = round_trip_word_error_rate(client)
    print(f"Piper round trip WER on 20 sentences: {rate:.3f}")
    assert rate <= 0.15
