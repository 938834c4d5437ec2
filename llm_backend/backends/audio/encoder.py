"""Speech samples ⇒ the bytes of an audio file, encoded with PyAV as they are produced.

One ``StreamEncoder`` per speech request: ``feed`` takes float32 samples (a sentence) and
returns the bytes the muxer has written so far, ``close`` the rest. The muxer writes to a
sink that cannot seek, so every container is written in its streaming form (a WAV header
with unknown sizes, as OpenAI streams it) and nothing waits for the whole text.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:  # PyAV is imported where it is used: only speech needs it
    from av.audio.resampler import AudioResampler
    from av.audio.stream import AudioStream

# response_format ⇒ (container, codec, sample format, bit rate); pcm has no container.
FORMATS = {
    "mp3": ("mp3", "libmp3lame", "s16p", 64_000),
    "opus": ("ogg", "libopus", "s16", 32_000),
    "aac": ("adts", "aac", "fltp", 64_000),
    "flac": ("flac", "flac", "s16", None),
    "wav": ("wav", "pcm_s16le", "s16", None),
}
# libopus encodes at 48 kHz only: its input is resampled to it.
CODEC_RATES = {"libopus": 48_000}
# OpenAI's pcm: 24 kHz, 16-bit little-endian, mono, no header to say otherwise; a voice of
# another rate (Piper's 22.05 kHz) is resampled to it. The containers carry their own rate.
PCM_RATE = 24_000


class _Sink(io.RawIOBase):
    """Collects what the muxer writes; not seekable, so the muxer streams."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class StreamEncoder:
    def __init__(self, response_format: str, sample_rate: int) -> None:
        self.format = response_format
        self.sample_rate = sample_rate
        self._pts = 0
        self._resampler: AudioResampler | None = None
        if response_format == "pcm":
            if sample_rate != PCM_RATE:
                import av

                self._resampler = av.AudioResampler(format="s16", layout="mono", rate=PCM_RATE)
            return
        import av

        container, codec, sample_format, bit_rate = FORMATS[response_format]
        self._sink = _Sink()
        # Ogg holds back a page per second by default: flushed per packet, it streams.
        self._output = av.open(self._sink, mode="w", format=container, options={"flush_packets": "1"})
        rate = CODEC_RATES.get(codec, sample_rate)
        # An audio codec's (FORMATS), so an AudioStream: the stub types a codec name by its literal.
        self._stream = cast("AudioStream", self._output.add_stream(codec, rate=rate, layout="mono"))
        if bit_rate:
            self._stream.bit_rate = bit_rate
        self._resampler = av.AudioResampler(format=sample_format, layout="mono", rate=rate)

    def feed(self, samples: np.ndarray) -> bytes:
        resampler = self._resampler
        if resampler is None:  # pcm at the voice's own rate (every other format has one)
            return pcm16(samples)
        import av

        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        self._pts += samples.shape[-1]
        if self.format == "pcm":
            return _pcm_bytes(resampler.resample(frame))
        self._encode(resampler.resample(frame))
        return self._sink.take()

    def close(self) -> bytes:
        resampler = self._resampler
        if resampler is None:  # pcm at the voice's own rate
            return b""
        if self.format == "pcm":
            return _pcm_bytes(resampler.resample(None))
        self._encode(resampler.resample(None))
        self._encode([None])
        self._output.close()
        return self._sink.take()

    def _encode(self, frames) -> None:
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._output.mux(packet)


def _pcm_bytes(frames) -> bytes:
    return b"".join(frame.to_ndarray().astype("<i2").tobytes() for frame in frames)
