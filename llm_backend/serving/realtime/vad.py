"""``server_vad``: where a user's turn starts and stops in a stream of 16 kHz audio, by the
Silero VAD that ships inside faster-whisper (``silero_vad_v6.onnx``, 1.2 MB, one thread).

Audio is judged in frames of 32 ms as it arrives, the model's recurrent state carried from
frame to frame (faster-whisper runs the same model over a whole file). A turn starts at the
first frame whose speech probability reaches ``threshold`` and stops once the probability
has stayed below ``threshold - 0.15`` (Silero's own hysteresis) for ``silence_duration_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME = 512  # samples: 32 ms at 16 kHz, the model's window
CONTEXT = 64  # samples of the previous frame the model sees with each one
MS_PER_FRAME = 32


@dataclass(frozen=True)
class Turn:
    """A change of the user's turn: ``started`` or ``stopped``, at ``ms`` of session audio."""

    kind: str
    ms: int


class Vad:
    def __init__(self, threshold: float = 0.5, silence_duration_ms: int = 500, start_ms: int = 0) -> None:
        from faster_whisper.vad import get_vad_model

        self.session = get_vad_model().session
        self.threshold = threshold
        self.silence_frames = max(1, -(-silence_duration_ms // MS_PER_FRAME))
        self.state = (np.zeros((1, 1, 128), dtype=np.float32), np.zeros((1, 1, 128), dtype=np.float32))
        self.context = np.zeros(CONTEXT, dtype=np.float32)
        self.pending = np.zeros(0, dtype=np.float32)
        self.start_ms = start_ms  # of the session's audio, where this VAD began listening
        self.frames = 0  # judged so far
        self.speaking = False
        self.quiet = 0  # frames below the threshold since the last speech

    def feed(self, audio: np.ndarray) -> list[Turn]:
        """The turns that ``audio`` (16 kHz float) starts or ends."""
        self.pending = np.concatenate([self.pending, audio])
        count = len(self.pending) // FRAME
        if not count:
            return []
        frames = self.pending[: count * FRAME].reshape(count, FRAME)
        self.pending = self.pending[count * FRAME :]
        contexts = np.vstack([self.context, frames[:-1, -CONTEXT:]]) if count > 1 else self.context[None]
        self.context = frames[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, frames], axis=1)
        probabilities, h, c = self.session.run(None, {"input": batch, "h": self.state[0], "c": self.state[1]})
        self.state = (h, c)
        turns = []
        for probability in np.asarray(probabilities).reshape(-1):
            self.frames += 1
            if not self.speaking and probability >= self.threshold:
                self.speaking, self.quiet = True, 0
                turns.append(Turn("started", self.start_ms + (self.frames - 1) * MS_PER_FRAME))
            elif self.speaking:
                self.quiet = self.quiet + 1 if probability < self.threshold - 0.15 else 0
                if self.quiet >= self.silence_frames:
                    self.speaking = False
                    turns.append(Turn("stopped", self.start_ms + self.frames * MS_PER_FRAME))
        return turns
