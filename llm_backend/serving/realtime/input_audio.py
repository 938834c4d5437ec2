"""A session's input audio: its format, its turn detection, its buffer, and the turns it
cuts (``input_audio_buffer.*`` events in, ``speech_started``/``stopped`` and ``committed``
out). What becomes of a turn is the session's (``accept`` it or refuse it, then
``on_turn``).

A turn ends when the client commits the buffer or, with ``server_vad``, when the VAD hears
its speech stop (``vad.py``); ``semantic_vad`` (the Agents SDK's default) is served as
``server_vad`` whose silence follows its ``eagerness`` (``EAGERNESS_SILENCE_MS``).

Bounded (issue #39): the buffer holds at most ``realtime_buffer_seconds`` (more is refused,
the buffer kept); with turn detection, silence before speech is dropped beyond its padding.
Silence never fills the buffer, but the VAD must still hear it, so the audio itself may run
at most ``realtime_audio_lead_seconds`` ahead of the clock (``Lead``): a microphone never
gets there, a flood is refused before it is decoded. Decoding, resampling and the VAD run
off the event loop (``threads.py``), ``SLICE_SECONDS`` at a time, so a frame's size never
sets the memory it expands to. A turn the session cannot take now (too many waiting to be
heard, a full conversation) is refused before ``committed``, and its audio stays in the
buffer: a commit may be retried, and a VAD turn joins the next one.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable

import numpy as np

from ...errors import OpenAIError, bad_request
from ...errors import unsupported_value as unsupported
from ...json.types import Json
from ...settings import Settings
from .audio_in import FORMATS, RATE, Buffer, Resampler, Turn, pcm16, samples
from .events import Send, error_event, event_id, new_id, only
from .threads import off_loop
from .vad import Vad

MIN_COMMIT_MS = 100
SLICE_SECONDS = 10  # of input audio converted and heard at a time (24 kHz pcm16: 480 KB)
EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 350}
SERVER_VAD: Json = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
RESPONSE_FLAGS: Json = {"create_response": True, "interrupt_response": True}
BYTES_PER_SAMPLE = {"audio/pcm": 2, "audio/pcmu": 1, "audio/pcma": 1}
Accept = Callable[[str], None]  # takes a turn's item id, or raises (nothing sent yet)
OnTurn = Callable[[Turn], Awaitable[None]]


class Lead:
    """How far a session's audio has run ahead of the clock: a leaky bucket that drains at
    real time and holds at most ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.level = 0.0
        self.at = time.monotonic()

    def _drained(self) -> float:
        now = time.monotonic()
        self.level, self.at = max(0.0, self.level - (now - self.at)), now
        return self.level

    def check(self, seconds: float) -> None:
        if self._drained() + seconds > self.seconds:
            raise bad_request(
                f"Input audio may run at most {self.seconds:g} seconds ahead of real time "
                f"(realtime_audio_lead_seconds); this would be {self.level + seconds:.0f}. Send audio as it is spoken.",
                "audio",
                "input_audio_too_fast",
            )

    def add(self, seconds: float) -> None:
        self._drained()
        self.level += seconds


class InputAudio:
    def __init__(self, settings: Settings, send: Send, accept: Accept, on_turn: OnTurn, respond: bool) -> None:
        self.send = send
        self.accept: Accept | None = accept
        self.on_turn: OnTurn | None = on_turn
        self.max_seconds = min(settings.realtime_buffer_seconds, settings.max_audio_seconds)
        self.lead = Lead(settings.realtime_audio_lead_seconds)
        self.respond = respond  # conversation sessions: turn detection may create responses
        self.format: Json = {"type": "audio/pcm", "rate": 24_000}
        self.turn_detection: Json | None = self._defaults(dict(SERVER_VAD))
        self.on_speech: Callable[[], Awaitable[None]] | None = None  # barge-in, for a conversation
        self.previous_item: str | None = None  # kept by the session: what a turn is committed after
        self.buffer = Buffer()
        self.refused_from_ms: int | None = None  # where a turn refused by the session began
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
        self.refused_from_ms = None

    def _vad(self) -> Vad | None:
        detection = self.turn_detection
        if detection is None:
            return None
        start = self.buffer.end_ms  # the VAD listens from here on
        if detection["type"] == "semantic_vad":
            return Vad(0.5, EAGERNESS_SILENCE_MS[detection["eagerness"]], start)
        return Vad(detection["threshold"], detection["silence_duration_ms"], start)

    @property
    def padding_ms(self) -> int:
        return self.turn_detection.get("prefix_padding_ms", 300) if self.turn_detection else 0

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
        width, rate = BYTES_PER_SAMPLE[self.format["type"]], self.format["rate"]
        at_most = len(encoded) * 3 // 4 // width / rate  # seconds: known before anything is decoded
        if self.buffer.seconds + at_most > self.max_seconds:
            raise bad_request(
                f"The input audio buffer holds at most {self.max_seconds:g} seconds: commit or clear it.",
                "audio",
                "input_audio_buffer_full",
            )
        self.lead.check(at_most)
        data = await off_loop(_decoded, encoded)
        self.lead.add(len(data) // width / rate)
        step = SLICE_SECONDS * rate * width
        for start in range(0, len(data), step):
            audio, turns = await off_loop(self._heard, data[start : start + step])
            self.buffer.add(audio)
            for kind, ms in turns:
                await self._turn_event(kind, ms)
            if self.speech_item is None and self.refused_from_ms is None and self.turn_detection is not None:
                self.buffer.keep_last(self.padding_ms)

    def _heard(self, data: bytes) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """A slice of the client's audio at 16 kHz, and the turns the VAD heard start or stop
        in it (in a worker thread: the resampler's and the VAD's state are this session's,
        whose events are handled one at a time)."""
        vad = self.vad  # once: a session closing meanwhile lets go of it
        audio = self.resampler(samples(data, self.format["type"]))
        turns = vad.feed(audio) if vad is not None else []
        return pcm16(audio), [(turn.kind, turn.ms) for turn in turns]

    async def _turn_event(self, kind: str, ms: int) -> None:
        if kind == "started":
            self.speech_item, self.speech_start_ms = new_id("item"), ms
            await self.send({"type": "input_audio_buffer.speech_started", "event_id": event_id(), "audio_start_ms": ms, "item_id": self.speech_item})
            if self.on_speech is not None and self.turn_detection and self.turn_detection.get("interrupt_response"):
                await self.on_speech()
        elif self.speech_item is not None:
            item, self.speech_item = self.speech_item, None
            await self.send({"type": "input_audio_buffer.speech_stopped", "event_id": event_id(), "audio_end_ms": ms, "item_id": item})
            try:
                await self._commit(item, max(self.speech_start_ms - self.padding_ms, 0), ms)
            except OpenAIError as error:  # the turn waits in the buffer, joined to the next one
                await self.send(error_event(error))

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
        self.speech_item, self.refused_from_ms = None, None
        self.vad = self._vad()  # a turn it heard begin is gone with the buffer
        await self.send({"type": "input_audio_buffer.cleared", "event_id": event_id()})

    async def _commit(self, item: str, start_ms: int, end_ms: int) -> None:
        """The audio from ``start_ms`` to ``end_ms`` a turn, if the session takes it now;
        if not, the refusal is raised before anything is sent and the audio stays."""
        if self.refused_from_ms is not None:
            start_ms = min(start_ms, self.refused_from_ms)
        if self.accept is None or self.on_turn is None:
            return  # closed
        previous = self.previous_item
        try:
            self.accept(item)
        except OpenAIError:
            self.refused_from_ms = start_ms
            raise
        self.refused_from_ms = None
        turn = Turn(item, self.buffer.take(start_ms, end_ms))
        await self.send({"type": "input_audio_buffer.committed", "event_id": event_id(), "previous_item_id": previous, "item_id": item})
        await self.on_turn(turn)

    def close(self) -> None:
        """Let go of the audio and of the session (its callbacks): a closed session's
        memory comes back at once, not at the next garbage collection."""
        self.buffer.clear()
        self.accept = self.on_turn = self.on_speech = None
        self.vad = None


DECODED_AT_ONCE = 1 << 19  # base64 characters (a multiple of 4): the GIL let go between pieces


def _decoded(encoded: str) -> bytes:
    try:
        if len(encoded) % 4 or "=" in encoded[:-2]:  # padding only at the very end, as one decode would say
            raise ValueError("not base64")
        return b"".join(
            base64.b64decode(encoded[start : start + DECODED_AT_ONCE], validate=True) for start in range(0, len(encoded), DECODED_AT_ONCE)
        )
    except (binascii.Error, ValueError):
        raise bad_request("Invalid 'audio': not base64.", "audio", "invalid_value") from None
