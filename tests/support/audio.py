"""Audio for the tests: decoding what the service answered, word error rates, and real
human speech (LibriVox recordings, public domain, from Debian's pocketsphinx-testdata)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import av
import jiwer
import numpy as np

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def decoded(data: bytes) -> tuple[str, int, float]:
    """(codec, sample rate, seconds) of an audio file, decoded whole with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, stream.rate, samples / stream.rate


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " "))).strip()


def word_error_rate(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalized(reference), normalized(hypothesis))


def librivox() -> list[tuple[Path, str]]:
    """The five clips of Sense and Sensibility (read for LibriVox) and their transcripts."""
    lines = (LIBRIVOX / "transcription").read_text().splitlines()
    clips = []
    for line in lines:
        text, name = re.match(r"<s> (.*) </s> \((.*)\)", line).groups()
        clips.append((LIBRIVOX / f"{name}.wav", text))
    return clips


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype("<i2").reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()
