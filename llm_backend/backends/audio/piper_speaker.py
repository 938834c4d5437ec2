"""Piper's engine (``piper-tts``, GPL-3.0-or-later, espeak-ng inside): the optional extra.

Installed only with ``pip install '.[piper]'`` and chosen with ``speech_engine: piper``; the
image and the default install keep to hibari (Apache-2.0), docs/MODELS.md says why. Piper
splits the text into sentences itself (espeak-ng's phonemizer) and synthesizes them one by
one, lazily, so the first sentence streams before the rest is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from .speaker import Speaker


class PiperSpeaker(Speaker):
    def __init__(self, threads: int, voice: str, model: str, config: str) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # the core budget's share, as hibari's
        with open(config, encoding="utf-8") as file:
            self.config = PiperConfig.from_dict(json.load(file))
        session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        self.piper = PiperVoice(config=self.config, session=session)
        self.synthesis = SynthesisConfig
        self.sample_rate = self.config.sample_rate
        self.voice = voice
        list(self.sentences("Warm up.", 1.0))  # espeak-ng's tables, before the first request

    def sentences(self, text: str, speed: float) -> Iterator[tuple[np.ndarray, int]]:
        # Piper's length scale is the inverse of a speed: 2.0 reads twice as slowly.
        config = self.synthesis(length_scale=(self.config.length_scale or 1.0) / speed)
        for chunk in self.piper.synthesize(text, config):
            yield chunk.audio_float_array, len(chunk.phonemes)
