"""A session's input audio: its format, its turn detection, its buffer, and the turns it
cuts (``input_audio_buffer.*`` events in, ``speech_started``/``stopped`` and ``committed``
out). What becomes of a turn is the session's (``on_turn``).

A turn ends when the client commits the buffer or, with ``server_vad``, when the VAD hears
its speech stop (``vad.py``); ``semantic_vad`` (the Agents SDK's default) is served as
``server_vad`` whose silence follows its ``eagerness`` (``EAGERNESS_SILENCE_MS``). The
buffer holds at most ``BUFFER_SECONDS`` (more is refused, the buffer kept); with turn
detection, silence before speech is dropped beyond its padding.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

import numpy as np

from ...errors import bad_request
from .audio_in import FORMATS, RATE, Buffer, Resampler, samples
from .events import Json, Send, event_id, new_id, only, unsupported
from .vad import Vad

BUFFER_SECONDS = 300
"""Audio one session holds uncommitted (16 kHz float: 19 MB)."""
MIN_COMMIT_MS = 100
EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 350}
SERVER_VAD: Json = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
RESPONSE_FLAGS: Json = {"create_response": True, "interrupt_response": True}
# A turn: its item id and its 16 kHz audio.
OnTurn = Callable[[str, np.ndarray], Awaitable[None]]


class InputAudio:
    def __init__(self, send: Send, on_turn: OnTurn, max_seconds: float, respond: bool) -> None:
        self.send = send
        self.on_turn = on_turn
        self.max_seconds = min(BUFFER_SECONDS, max_seconds)
        self.respond = respond  # conversation sessions: turn detection may create responses
        self.format: Json = {"type": "audio/pcm", "rate": 24_000}
        self.turn_detection: Json | None = self._defaults(dict(SERVER_VAD))
        self.on_speech: Callable[[], Awaitable[None]] | None = None  # barge-in, for a conversation
        self.previous_item: str | None = None
        self.buffer = Buffer()
        self._reset()

    def _defaults(self, detection: Json) -> Json:
        return {**detection, **RESPONSE_FLAGS} if self.respond else detection

    def to_openai(self) -> Json:
        return {"format": dict(self.format), "turn_detection": self.turn_detection and dict(self.turn_detection)}

    def check(self, given: Json, prefix: str) -> tuple[Json, Json | None]:
        """The format and turn detection ``given`` (a session's ``audio.input``) asks for, or
        the 400 naming what cannot be; its ``transcription`` is the session's to check."""
        only(given, ("format", "transcription", "noise_reduction", "turn_detection"), prefix)
        audio_format = given.get("format", self.format)
        if audio_format.get("type") not in FORMATS:
            raise unsupported(f"{prefix}.format.type", f"one of {', '.join(FORMATS)}")
        if given.get("noise_reduction") is not None:
            raise unsupported(f"{prefix}.noise_reduction", "no noise reduction runs here (null)")
        detection = given.get("turn_detection", self.turn_detection)
        return {"type": audio_format["type"], "rate": FORMATS[audio_format["type"]]}, detection and self._detection(detection, prefix)

    def _detection(self, given: Json, prefix: str) -> Json:
        param = f"{prefix}.turn_detection"
        flags = {key: given.get(key, value) for key, value in RESPONSE_FLAGS.items()} if self.respond else {}
        if given.get("type") == "semantic_vad":
            only(given, ("type", "eagerness", *RESPONSE_FLAGS), param)
            return {"type": "semantic_vad", "eagerness": given.get("eagerness", "auto"), **flags}
        if given.get("type") != "server_vad":
            raise unsupported(f"{param}.type", "server_vad, semantic_vad or null")
        only(given, (*SERVER_VAD, *RESPONSE_FLAGS, "idle_timeout_ms"), param)
        if given.get("idle_timeout_ms") is not None:
            raise unsupported(f"{param}.idle_timeout_ms", "no idle timeout here (null)")
        return {**SERVER_VAD, **{key: value for key, value in given.items() if key in SERVER_VAD}, **flags}

    def apply(self, audio_format: Json, detection: Json | None) -> None:
        """Take a checked configuration (``check``)."""
        changed_rate = audio_format["rate"] != self.format["rate"]
        self.format, self.turn_detection = audio_format, detection
        if changed_rate:
            self._reset()
        else:
            self.vad = self._vad()

    def _reset(self) -> None:
        self.resampler = Resampler(self.format["rate"])
        self.buffer = Buffer(self.buffer.end_ms)
        self.vad = self._vad()
        self.speech_item: str | None = None
        self.speech_start_ms = 0

    def _vad(self) -> Vad | None:
        detection = self.turn_detection
        if detection is None:
            return None
        start = self.buffer.end_ms  # the VAD listens from here on
        if detection["type"] == "semantic_vad":
            return Vad(0.5, EAGERNESS_SILENCE_MS[detection["eagerness"]], start)
        return Vad(detection["threshold"], detection["silence_duration_ms"], start)

    # --- events -----------------------------------------------------------------------------

    async def handle(self, kind: str, event: Json) -> bool:
        """An ``input_audio_buffer.*`` event handled; False for any other."""
        if kind == "input_audio_buffer.append":
            await self.append(event["audio"])
        elif kind == "input_audio_buffer.commit":
            await self.commit()
        elif kind == "input_audio_buffer.clear":
            await self.clear()
        else:
            return False
        return True

    async def append(self, encoded: str) -> None:
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("Invalid 'audio': not base64.", "audio", "invalid_value") from None
        pcm = self.resampler(samples(data, self.format["type"]))
        if (self.buffer.samples + len(pcm)) / RATE > self.max_seconds:
            raise bad_request(
                f"The input audio buffer holds at most {self.max_seconds:g} seconds: commit or clear it.",
                "audio",
                "input_audio_buffer_full",
            )
        self.buffer.add(pcm)
        if self.vad is None:
            return
        for turn in self.vad.feed(pcm):
            if turn.kind == "started":
                self.speech_item, self.speech_start_ms = new_id("item"), turn.ms
                await self.send({"type": "input_audio_buffer.speech_started", "event_id": event_id(), "audio_start_ms": turn.ms, "item_id": self.speech_item})
                if self.on_speech is not None and self.turn_detection and self.turn_detection.get("interrupt_response"):
                    await self.on_speech()
            elif self.speech_item is not None:
                item, self.speech_item = self.speech_item, None
                await self.send({"type": "input_audio_buffer.speech_stopped", "event_id": event_id(), "audio_end_ms": turn.ms, "item_id": item})
                padding = self.turn_detection.get("prefix_padding_ms", 300) if self.turn_detection else 0
                await self._commit(item, max(self.speech_start_ms - padding, 0), turn.ms)
        if self.speech_item is None and self.turn_detection is not None:
            self.buffer.keep_last(self.turn_detection.get("prefix_padding_ms", 300))

    async def commit(self) -> None:
        """``input_audio_buffer.commit``: the whole buffer is a turn."""
        if self.buffer.end_ms - self.buffer.start_ms < MIN_COMMIT_MS:
            raise bad_request(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, "
                f"but buffer only has {self.buffer.samples * 1000 / RATE:.2f}ms of audio.",
                None,
                "input_audio_buffer_commit_empty",
            )
        item, self.speech_item = self.speech_item or new_id("item"), None
        await self._commit(item, self.buffer.start_ms, self.buffer.end_ms)

    async def clear(self) -> None:
        self.buffer.clear()
        self.speech_item = None
        self.vad = self._vad()  # a turn it heard begin is gone with the buffer
        await self.send({"type": "input_audio_buffer.cleared", "event_id": event_id()})

    async def _commit(self, item: str, start_ms: int, end_ms: int) -> None:
        turn = self.buffer.take(start_ms, end_ms)
        await self.send({"type": "input_audio_buffer.committed", "event_id": event_id(), "previous_item_id": self.previous_item, "item_id": item})
        await self.on_turn(item, turn)
