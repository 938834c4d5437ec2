"""Text to speech inside an audio worker: the engine-neutral part, and hibari's engine.

The input is split into sentences and each is synthesized and encoded on its own, so the
first audio goes out after the first sentence (about 12 ms of synthesis for a short one
with hibari, its README), not after the whole text. An engine says what sentences sound
like (``sentences``); ``Speaker.run`` encodes, streams, cancels and counts for them all.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..llama.engine.errors import RequestError
from .encoder import StreamEncoder


class Speaker(ABC):
    sample_rate: int
    voice: str  # the one installed voice (settings.speech_voice names it)

    @abstractmethod
    def sentences(self, text: str, speed: float) -> Iterator[tuple[np.ndarray, int]]:
        """Each sentence's float32 samples and the number of phonemes read, one by one."""

    def run(self, params: dict[str, Any], emit: Callable[[dict], None], cancelled: Callable[[], bool]) -> None:
        if params.get("voice", self.voice) != self.voice:
            raise RequestError(400, f"Voice '{params.get('voice')}' is not installed.", "voice", "invalid_value")
        encoder = StreamEncoder(params["format"], self.sample_rate)
        samples = phonemes_read = 0
        pieces = self.sentences(params["input"], float(params.get("speed") or 1.0))
        while not cancelled():  # before each sentence is synthesized
            piece = next(pieces, None)
            if piece is None:
                break
            audio, phonemes = piece
            samples += audio.shape[0]
            phonemes_read += phonemes
            self._emit_audio(emit, encoder.feed(audio))
        else:
            return
        self._emit_audio(emit, encoder.close())
        emit({"event": "usage", "seconds": round(samples / self.sample_rate, 3), "phonemes": phonemes_read})

    @staticmethod
    def _emit_audio(emit: Callable[[dict], None], data: bytes) -> None:
        if data:
            emit({"event": "audio", "data": base64.b64encode(data).decode()})


class HibariSpeaker(Speaker):
    """hibari (Apache-2.0, ONNX, 24 kHz, 6 M parameters): the default engine."""

    sample_rate = 24_000

    def __init__(self, threads: int, voice: str) -> None:
        from hibari import Hibari

        self.voice = voice
        self.tts = Hibari(voice=voice, threads=threads)
        self.tts("Warm up.")  # loads the G2P tables (about 0.3 s) before the first request

    def sentences(self, text: str, speed: float) -> Iterator[tuple[np.ndarray, int]]:
        for sentence in self.tts.split_sentences(text):
            for phonemes in self.tts.phonemize(sentence):
                yield self.tts.from_ids(self.tts.ids(phonemes), speed), len(phonemes)
