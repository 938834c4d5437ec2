"""faster-whisper's model as the audio worker runs it: a window's language detected from the
encoder pass its transcription makes anyway.

faster-whisper 1.2 detects a language with ``detect_language``, which encodes the first
30-second window, then ``generate_segments`` encodes that same window again to decode it:
the encoder, most of a short turn's work, ran twice (7.4 s instead of 3.9 s for a 4.8 s
question on this machine, issue #41). Here ``detect_language``, when ``transcribe`` asks it
about the features it is about to decode, encodes exactly the window ``generate_segments``
encodes first (its first ``min(30 s, content)`` frames, padded), detects from that output,
and hands the output to ``generate_segments`` (which takes an encoder output for its first
window: faster-whisper's own parameter, used so before 1.1). The transcription is then the
one it would be with the detected language given; the detection sees the window without the
extractor's one frame of padding past the content (faster-whisper's own sees it), which
changes no language here. Both methods are public ones of ``WhisperModel``; the hand-over is
per thread (a worker may transcribe ``parallel`` requests at once).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim


class Whisper(WhisperModel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoded = threading.local()  # (features, encoder output) from detect_language

    def first_window(self, features: np.ndarray) -> np.ndarray:
        """What ``generate_segments`` encodes first: up to 30 s of the content frames (all
        but the extractor's last, padding frame), padded to 30 s."""
        return pad_or_trim(features[:, : min(self.feature_extractor.nb_max_frames, features.shape[-1] - 1)])

    def detect_language(
        self,
        audio: np.ndarray | None = None,
        features: np.ndarray | None = None,
        vad_filter: bool = False,
        vad_parameters: Any = None,
        language_detection_segments: int = 1,
        language_detection_threshold: float = 0.5,
    ) -> tuple[str, float, list[tuple[str, float]]]:
        if audio is not None or features is None or language_detection_segments != 1 or features.shape[-1] < 2:
            return super().detect_language(
                audio, features, vad_filter, vad_parameters, language_detection_segments, language_detection_threshold
            )
        encoder_output = self.encode(self.first_window(features))
        self._encoded.held = (features, encoder_output)
        # One window: its most likely language whatever the threshold, as faster-whisper's own.
        languages = [(token[2:-2], probability) for token, probability in self.model.detect_language(encoder_output)[0]]
        return languages[0][0], languages[0][1], languages

    def generate_segments(self, features: np.ndarray, tokenizer: Any, options: Any, log_progress: Any, encoder_output: Any = None) -> Any:
        held, self._encoded.held = getattr(self._encoded, "held", None), None
        # Only the same features, from their start (``transcribe`` detects from ``features[..., seek:]``).
        if encoder_output is None and held is not None and held[0].shape == features.shape and np.may_share_memory(held[0], features):
            encoder_output = held[1]
        return super().generate_segments(features, tokenizer, options, log_progress, encoder_output)
