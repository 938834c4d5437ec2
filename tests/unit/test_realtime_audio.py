"""Realtime input audio (serving/realtime/audio_in.py): G.711 expanded exactly as the
standard library's reference codec does, and the resampler seamless across chunks."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from llm_backend.serving.realtime.audio_in import Buffer, Resampler, samples
from tests.support.fuzz import SEED

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference G.711 codec (deprecated, present in 3.11)


@pytest.mark.parametrize("audio_format, reference", [("audio/pcmu", audioop.ulaw2lin), ("audio/pcma", audioop.alaw2lin)])
def test_g711_codes_expand_as_the_reference_codec(audio_format, reference):
    codes = bytes(range(256))
    assert np.array_equal(samples(codes, audio_format), np.frombuffer(reference(codes, 2), "<i2"))


@pytest.mark.parametrize("rate", [24_000, 8_000])
def test_resampling_in_random_chunks_equals_resampling_at_once(rate):
    rng = random.Random(SEED)
    tone = (np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * 12000).astype(np.int16)
    whole = Resampler(rate)(tone)
    cuts = sorted(rng.sample(range(1, len(tone)), 40))
    pieces = np.concatenate(_fed(Resampler(rate), np.split(tone, cuts)))
    assert abs(len(pieces) - len(whole)) <= 1
    n = min(len(pieces), len(whole))
    assert np.abs(pieces[:n] - whole[:n]).max() < 1e-4, f"seed {SEED}"
    expected = np.sin(2 * np.pi * 440 * np.arange(n) / 16000) * 12000 / 32768
    # The last input sample or two wait for the next chunk (interpolation needs what follows).
    assert np.abs(whole[:n] - expected).max() < 0.02 and 0 <= 16000 - len(whole) <= 2


def _fed(resampler: Resampler, chunks: list[np.ndarray]) -> list[np.ndarray]:
    return [resampler(chunk) for chunk in chunks]


def test_the_buffer_takes_a_turn_and_keeps_what_follows():
    buffer = Buffer()
    for _ in range(10):
        buffer.add(np.ones(1600, dtype=np.float32))  # 100 ms each
    turn = buffer.take(200, 700)
    assert len(turn) == 8000 and buffer.start_ms == 700 and buffer.end_ms == 1000
    buffer.keep_last(100)  # not yet: under twice the padding plus a second
    assert buffer.start_ms == 700
