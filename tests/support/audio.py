"""Audio for the tests: decoding what the service answered, word error rates, and real
human speech (LibriVox recordings, public domain, from Debian's pocketsphinx-testdata)."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

import av
import jiwer

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


# Twenty of the Harvard sentences (IEEE 1969), the round trip's text.
SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
]


def round_trip_word_error_rate(client) -> float:
    """The twenty sentences spoken by the service (FLAC) and transcribed back by it."""
    text = " ".join(SENTENCES)
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="flac")
    transcript = client.audio.transcriptions.create(model="whisper-1", file=("speech.flac", speech.content))
    return word_error_rate(text, transcript.text)


def librivox() -> list[tuple[Path, str]]:
    """The five clips of Sense and Sensibility (read for LibriVox) and their transcripts."""
    lines = (LIBRIVOX / "transcription").read_text().splitlines()
    clips = []
    for line in lines:
        text, name = re.match(r"<s> (.*) </s> \((.*)\)", line).groups()
        clips.append((LIBRIVOX / f"{name}.wav", text))
    return clips


def wav_16k(frames: bytes) -> bytes:
    """16-bit mono 16 kHz samples as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as joined:
        joined.setnchannels(1)
        joined.setsampwidth(2)
        joined.setframerate(16000)
        joined.writeframes(frames)
    return out.getvalue()


def librivox_joined() -> tuple[bytes, float]:
    """The five clips as one 16 kHz WAV (about 25 s: a request that runs for seconds), and
    its length in seconds."""
    frames = b""
    for path, _ in librivox():
        with wave.open(str(path)) as clip:
            frames += clip.readframes(clip.getnframes())
    return wav_16k(frames), len(frames) / 2 / 16000


# The local audio models' ids with the default settings, as GET /v1/models lists them.
DEFAULT_AUDIO_IDS = [
    "whisper-base", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "hibari", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"
]
