"""Realtime input audio as the speech models read it: OpenAI's formats (``audio/pcm`` 16-bit
mono at 24 kHz, ``audio/pcmu`` and ``audio/pcma`` G.711 at 8 kHz) to 16 kHz float samples.

G.711 is expanded by its standard formulas (ITU-T G.711) into 16-bit values; the rate is
changed by linear interpolation, enough for speech models whose features stop at 8 kHz
(Whisper's mel filters, Silero's). A chunk converted on its own meets the next one without
a seam: the interpolation keeps its fractional position between chunks.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 16_000
"""What the VAD and the transcriber read."""
FORMATS = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}


def _mulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.uint8)
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return np.where(sign, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.uint8) ^ 0x55
    sign = codes & 0x80
    exponent = ((codes >> 4) & 0x07).astype(np.int32)
    mantissa = (codes & 0x0F).astype(np.int32)
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign, magnitude, -magnitude).astype(np.int16)


TABLES = {"audio/pcmu": _mulaw_table(), "audio/pcma": _alaw_table()}


def samples(data: bytes, audio_format: str) -> np.ndarray:
    """The 16-bit samples of ``data`` in ``audio_format`` (an odd PCM byte is dropped)."""
    table = TABLES.get(audio_format)
    if table is not None:
        return table[np.frombuffer(data, dtype=np.uint8)]
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


class Resampler:
    """Samples at ``rate`` to float samples at 16 kHz, chunk after chunk."""

    def __init__(self, rate: int) -> None:
        self.step = rate / RATE  # input samples per output sample
        self.position = 0.0  # of the next output sample, in input samples from the carried one
        self.carried = np.zeros(0, dtype=np.float32)

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        values = np.concatenate([self.carried, pcm.astype(np.float32) / 32768.0])
        if len(values) < 2:
            self.carried = values
            return np.zeros(0, dtype=np.float32)
        positions = np.arange(self.position, len(values) - 1, self.step)
        out = np.interp(positions, np.arange(len(values)), values).astype(np.float32)
        following = self.position + len(positions) * self.step
        keep = int(following)  # the input sample the next output starts from
        self.carried = values[keep:]
        self.position = following - keep
        return out


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Float samples as 16-bit ones: what a turn is held and written as (half the memory)."""
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


class Buffer:
    """16 kHz 16-bit audio held for a turn, timed in milliseconds of the session's audio;
    kept as the chunks that came (joined only when a turn is taken), so appending costs no
    copy."""

    def __init__(self, start_ms: int = 0) -> None:
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.start_ms = start_ms

    @property
    def seconds(self) -> float:
        return self.samples / RATE

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.samples * 1000 // RATE

    def add(self, chunk: np.ndarray) -> None:
        self.chunks.append(chunk)
        self.samples += len(chunk)

    def take(self, start_ms: int, end_ms: int) -> np.ndarray:
        """The audio from ``start_ms`` to ``end_ms``; what came before ``end_ms`` is dropped."""
        joined = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        begin = min(len(joined), max(0, (start_ms - self.start_ms) * RATE // 1000))
        end = min(len(joined), max(begin, (end_ms - self.start_ms) * RATE // 1000))
        self._keep(joined[end:], self.start_ms + end * 1000 // RATE)
        return joined[begin:end]

    def keep_last(self, ms: int) -> None:
        """Drop all but the last ``ms`` (silence before any speech, beyond its padding)."""
        if self.end_ms - self.start_ms > 2 * ms + 1000:  # now and then, not on every chunk
            self.take(self.end_ms - ms, self.end_ms - ms)

    def clear(self) -> None:
        self._keep(np.zeros(0, dtype=np.int16), self.end_ms)

    def _keep(self, rest: np.ndarray, start_ms: int) -> None:
        self.chunks, self.samples, self.start_ms = ([rest] if len(rest) else []), len(rest), start_ms


class Turn:
    """A committed turn's audio (16 kHz, 16-bit), held in memory only until it is written to
    a WAV file for the speech model: a turn waiting to be heard holds a file, not memory."""

    def __init__(self, item: str, audio: np.ndarray) -> None:
        self.item = item
        self.audio: np.ndarray | None = audio
        self.seconds = len(audio) / RATE  # what the turn is billed as (audio minutes: docs/ADMIN.md)
        self.path: Path | None = None

    async def save(self, folder: Path) -> Path:
        from .threads import off_loop

        audio, self.audio = self.audio, None
        self.path = folder / f"realtime-{self.item}.wav"
        await off_loop(_write_wav, self.path, audio)
        return self.path

    def discard(self) -> None:
        self.audio = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(audio.astype("<i2").tobytes())
