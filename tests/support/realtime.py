"""What the Realtime tests share: server events checked against the OpenAI document, and
speech to send (LibriVox clips at 24 kHz pcm16, as OpenAI's clients send it)."""

from __future__ import annotations

import base64
import wave

import numpy as np

from llm_backend.spec.validation import RequestSchemaValidator
from tests.support.document import openai_document

COMPONENTS = openai_document()["components"]
SERVER_EVENTS = {
    COMPONENTS["schemas"][name]["properties"]["type"]["enum"][0]: RequestSchemaValidator(
        {"$ref": f"#/components/schemas/{name}", "components": COMPONENTS}
    )
    for name in (option["$ref"].rsplit("/", 1)[1] for option in COMPONENTS["schemas"]["RealtimeServerEvent"]["anyOf"])
}


class SERVER_EVENT:
    """Each server event checked against the document's schema of its type."""

    @staticmethod
    def validate(event: dict) -> None:
        SERVER_EVENTS[event["type"]].validate(event)


def pcm24k(path) -> bytes:
    """A 16 kHz LibriVox clip as 24 kHz 16-bit mono PCM."""
    with wave.open(str(path)) as clip:
        samples = np.frombuffer(clip.readframes(clip.getnframes()), "<i2").astype(np.float32)
    positions = np.arange(0, len(samples) - 1, 16000 / 24000)
    return np.interp(positions, np.arange(len(samples)), samples).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return bytes(int(24000 * seconds) * 2)


def send_audio(connection, pcm: bytes, chunk: int = 4800) -> None:
    for start in range(0, len(pcm), chunk):  # 100 ms appends, as a microphone sends them
        connection.input_audio_buffer.append(audio=base64.b64encode(pcm[start : start + chunk]).decode())


def events_until(connection, kind: str, count: int = 1) -> list[dict]:
    """Every server event (checked against the document) until ``count`` of ``kind``."""
    seen = []
    while sum(event["type"] == kind for event in seen) < count:
        event = connection.recv().model_dump(exclude_unset=True, by_alias=True)
        SERVER_EVENT.validate(event)
        assert event["type"] != "error", event
        seen.append(event)
    return seen


def next_error(connection) -> dict:
    """The next ``error`` event (checked against the document), past any other events."""
    while True:
        event = connection.recv().model_dump(exclude_unset=True, by_alias=True)
        SERVER_EVENT.validate(event)
        if event["type"] == "error":
            return event
