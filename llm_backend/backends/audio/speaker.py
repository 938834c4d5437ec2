"""Text to speech inside an audio worker: hibari (Apache-2.0, ONNX, 24 kHz, 6 M parameters).

The input is split into sentences and each is synthesized and encoded on its own, so the
first audio goes out after the first sentence (about 12 ms of synthesis for a short one,
hibari's README), not after the whole text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ..llama.engine.errors import RequestError
from .encoder import StreamEncoder

# The voice in the package; hibari's other voices download from a model hub on first use,
# which this service never does.
VOICES = ("heart",)


class Speaker:
    sample_rate = 24_000

    def __init__(self, threads: int) -> None:
        from hibari import Hibari

        self.tts = Hibari(voice=VOICES[0], threads=threads)
        self.tts("Warm up.")  # loads the G2P tables (about 0.3 s) before the first request

    def run(self, params: dict[str, Any], emit: Callable[[dict], None], cancelled: Callable[[], bool]) -> None:
        if params.get("voice", VOICES[0]) not in VOICES:
            raise RequestError(400, f"Voice '{params.get('voice')}' is not installed.", "voice", "invalid_value")
        encoder = StreamEncoder(params["format"], self.sample_rate)
        speed = float(params.get("speed") or 1.0)
        samples = phonemes_read = 0
        for sentence in self.tts.split_sentences(params["input"]):
            for phonemes in self.tts.phonemize(sentence):
                if cancelled():
                    return
                audio = self.tts.from_ids(self.tts.ids(phonemes), speed)
                samples += audio.shape[0]
                phonemes_read += len(phonemes)
                self._emit_audio(emit, encoder.feed(audio))
        self._emit_audio(emit, encoder.close())
        emit({"event": "usage", "seconds": round(samples / self.sample_rate, 3), "phonemes": phonemes_read})

    @staticmethod
    def _emit_audio(emit: Callable[[dict], None], data: bytes) -> None:
        if data:
            emit({"event": "audio", "data": base64.b64encode(data).decode()})
