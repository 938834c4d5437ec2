"""A Realtime transcription session (``/v1/realtime?intent=transcription``): audio in, one
user item per turn, its transcript as ``conversation.item.input_audio_transcription.*``.

A turn ends when the client commits the buffer (``input_audio_buffer.commit``) or, with
``server_vad``, when the VAD hears its speech stop (``vad.py``); ``semantic_vad`` (what the
Agents SDK asks for by default) is served as ``server_vad`` whose silence follows its
``eagerness`` (``EAGERNESS_SILENCE_MS``). Each turn is transcribed by the local speech-to-text
model the session names (``whisper-1`` by default), beside the audio that keeps coming;
its deltas are its segments as the model finds them.

Bounded: the buffer holds at most ``BUFFER_SECONDS`` of audio (more is refused with an
``error`` event, the buffer kept; with turn detection, silence before speech is dropped
beyond its padding), and at most ``MAX_PENDING`` turns wait to be transcribed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import uuid
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...backends.base import Serving
from ...errors import OpenAIError, bad_request
from .. import audio
from ..services import Services
from .audio_in import FORMATS, RATE, Buffer, Resampler, samples
from .vad import Vad

Json = dict[str, Any]
Send = Callable[[Json], Awaitable[None]]

SESSION_SECONDS = 30 * 60
"""A session's length, as OpenAI's (``expires_at``)."""
BUFFER_SECONDS = 300
"""Audio one session holds uncommitted (16 kHz float: 19 MB)."""
MAX_PENDING = 4
"""Turns committed and not yet transcribed, at most."""
MIN_COMMIT_MS = 100
EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 350}
DEFAULT_TURN_DETECTION: Json = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
LOGPROBS = "item.input_audio_transcription.logprobs"


def event_id() -> str:
    return f"event_{uuid.uuid4().hex[:20]}"


def _unknown(param: str) -> OpenAIError:
    return bad_request(f"Unknown parameter: '{param}'.", param, "unknown_parameter")


def _unsupported(param: str, why: str) -> OpenAIError:
    return bad_request(f"Unsupported value for '{param}': {why}.", param, "unsupported_value")


def _only(value: Json, known: tuple[str, ...], prefix: str) -> None:
    for key in value:
        if key not in known:
            raise _unknown(f"{prefix}.{key}")


class TranscriptionSession:
    def __init__(self, services: Services, send: Send, default_model: str) -> None:
        self.services = services
        self.send = send
        self.id = f"sess_{uuid.uuid4().hex[:20]}"
        self.expires_at = int(time.time()) + SESSION_SECONDS
        self.format: Json = {"type": "audio/pcm", "rate": 24_000}
        self.transcription: Json = {"model": default_model, "language": None, "prompt": ""}
        self.turn_detection: Json | None = dict(DEFAULT_TURN_DETECTION)
        self.include: list[str] = []
        self.max_seconds = min(BUFFER_SECONDS, services.settings.max_audio_seconds)
        self.tasks: set[asyncio.Task] = set()
        self.previous_item: str | None = None
        self.buffer = Buffer()
        self._reset_audio()

    # --- the session object ---------------------------------------------------------------

    def to_openai(self) -> Json:
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.id,
            "expires_at": self.expires_at,
            "include": list(self.include),
            # Unset fields are left out: the document types them as objects and strings, not null.
            "audio": {
                "input": {
                    "format": dict(self.format),
                    "transcription": {key: value for key, value in self.transcription.items() if value is not None},
                    "turn_detection": self.turn_detection and dict(self.turn_detection),
                }
            },
        }

    def update(self, session: Json) -> None:
        """``session.update``: every field honoured or refused naming it; nothing changes
        unless all of it can."""
        if session.get("type") != "transcription":
            raise _unsupported("session.type", "this is a transcription session (connected with intent=transcription)")
        _only(session, ("type", "audio", "include"), "session")
        include = session.get("include", self.include)
        audio_config = session.get("audio") or {}
        _only(audio_config, ("input",), "session.audio")
        given = audio_config.get("input") or {}
        _only(given, ("format", "transcription", "noise_reduction", "turn_detection"), "session.audio.input")
        audio_format = given.get("format", self.format)
        if audio_format.get("type") not in FORMATS:
            raise _unsupported("session.audio.input.format.type", f"one of {', '.join(FORMATS)}")
        transcription = {**self.transcription, **(given.get("transcription") or {})}
        _only(transcription, ("model", "language", "prompt"), "session.audio.input.transcription")
        self._check_model(transcription["model"])
        if given.get("noise_reduction") is not None:
            raise _unsupported("session.audio.input.noise_reduction", "no noise reduction runs here (null)")
        turn_detection = given.get("turn_detection", self.turn_detection)
        if turn_detection is not None:
            turn_detection = self._turn_detection(turn_detection)
        self.format = {"type": audio_format["type"], "rate": FORMATS[audio_format["type"]]}
        self.transcription, self.turn_detection, self.include = transcription, turn_detection, list(include)
        if self.format["rate"] != self.resampler_rate:
            self._reset_audio()
        else:
            self.vad = self._vad()

    def _check_model(self, model_id: Any) -> None:
        backend = self.services.registry.backend_for_or_none(str(model_id))
        if backend is None or backend.serving("createTranscription") is not Serving.HERE:
            raise _unsupported("session.audio.input.transcription.model", f"'{model_id}' is not a local speech-to-text model")

    def _turn_detection(self, given: Json) -> Json:
        kind = given.get("type")
        if kind == "semantic_vad":
            _only(given, ("type", "eagerness", "create_response", "interrupt_response"), "session.audio.input.turn_detection")
            return {"type": "semantic_vad", "eagerness": given.get("eagerness", "auto")}
        if kind != "server_vad":
            raise _unsupported("session.audio.input.turn_detection.type", "server_vad, semantic_vad or null")
        known = ("type", "threshold", "prefix_padding_ms", "silence_duration_ms", "create_response", "interrupt_response", "idle_timeout_ms")
        _only(given, known, "session.audio.input.turn_detection")
        if given.get("idle_timeout_ms") is not None:
            raise _unsupported("session.audio.input.turn_detection.idle_timeout_ms", "no idle timeout here (null)")
        return {**DEFAULT_TURN_DETECTION, **{key: value for key, value in given.items() if key in DEFAULT_TURN_DETECTION}}

    # --- audio ------------------------------------------------------------------------------

    def _reset_audio(self) -> None:
        self.resampler_rate = self.format["rate"]
        self.resampler = Resampler(self.resampler_rate)
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
        if self.vad is not None:
            for turn in self.vad.feed(pcm):
                if turn.kind == "started":
                    self.speech_item = f"item_{uuid.uuid4().hex[:20]}"
                    self.speech_start_ms = turn.ms
                    await self.send({"type": "input_audio_buffer.speech_started", "event_id": event_id(), "audio_start_ms": turn.ms, "item_id": self.speech_item})
                elif self.speech_item is not None:
                    await self.send({"type": "input_audio_buffer.speech_stopped", "event_id": event_id(), "audio_end_ms": turn.ms, "item_id": self.speech_item})
                    padding = self.turn_detection.get("prefix_padding_ms", 300) if self.turn_detection else 0
                    await self._commit(self.speech_item, max(self.speech_start_ms - padding, 0), turn.ms)
                    self.speech_item = None
            if self.speech_item is None and self.turn_detection is not None:
                self.buffer.keep_last(self.turn_detection.get("prefix_padding_ms", 300))

    async def commit(self) -> None:
        """``input_audio_buffer.commit``: the whole buffer is a turn."""
        if self.buffer.end_ms - self.buffer.start_ms < MIN_COMMIT_MS:
            ms = self.buffer.samples * 1000 / RATE
            raise bad_request(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, "
                f"but buffer only has {ms:.2f}ms of audio.",
                None,
                "input_audio_buffer_commit_empty",
            )
        item = self.speech_item or f"item_{uuid.uuid4().hex[:20]}"
        self.speech_item = None
        await self._commit(item, self.buffer.start_ms, self.buffer.end_ms)

    async def clear(self) -> None:
        self.buffer.clear()
        self.speech_item = None
        self.vad = self._vad()  # a turn it heard begin is gone with the buffer
        await self.send({"type": "input_audio_buffer.cleared", "event_id": event_id()})

    async def _commit(self, item: str, start_ms: int, end_ms: int) -> None:
        """The buffer's audio from ``start_ms`` to ``end_ms`` becomes a user item, to be
        transcribed; what came before it is dropped, what came after stays buffered."""
        if len(self.tasks) >= MAX_PENDING:
            raise bad_request(f"At most {MAX_PENDING} turns wait to be transcribed; wait for one.", None, "too_many_pending_turns")
        turn = self.buffer.take(start_ms, end_ms)
        previous, self.previous_item = self.previous_item, item
        await self.send({"type": "input_audio_buffer.committed", "event_id": event_id(), "previous_item_id": previous, "item_id": item})
        user_item = {
            "id": item,
            "type": "message",
            "object": "realtime.item",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio"}],
        }
        await self.send({"type": "conversation.item.added", "event_id": event_id(), "previous_item_id": previous, "item": user_item})
        await self.send({"type": "conversation.item.done", "event_id": event_id(), "previous_item_id": previous, "item": user_item})
        task = asyncio.create_task(self._transcribe(item, turn), name=f"realtime transcription {item}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _transcribe(self, item: str, turn: np.ndarray) -> None:
        model_id = self.transcription["model"]
        folder = self.services.settings.data_dir / "tmp"
        path = folder / f"realtime-{item}.wav"
        body: Json = {"model": model_id, "stream": True, "response_format": "json"}
        if self.transcription.get("language"):
            body["language"] = self.transcription["language"]
        if self.transcription.get("prompt"):
            body["prompt"] = self.transcription["prompt"]
        if LOGPROBS in self.include:
            body["include"] = ["logprobs"]
        try:
            await asyncio.to_thread(_write_wav, path, turn, folder)
            backend = self.services.registry.backend_for(model_id)
            events = await backend.transcription(model_id, audio.transcription_params(body, str(path), "transcribe"))
            async for event in audio.transcription_events(events, body):
                if event["type"] == "transcript.text.delta":
                    delta: Json = {"type": "conversation.item.input_audio_transcription.delta", "event_id": event_id(), "item_id": item, "content_index": 0, "delta": event["delta"]}
                    if "logprobs" in event:
                        delta["logprobs"] = event["logprobs"]
                    await self.send(delta)
                else:
                    completed: Json = {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "event_id": event_id(),
                        "item_id": item,
                        "content_index": 0,
                        "transcript": event["text"],
                        "usage": event["usage"],
                    }
                    if "logprobs" in event:
                        completed["logprobs"] = event["logprobs"]
                    await self.send(completed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the session goes on: this turn failed
            from ...errors import answered

            error = answered(exc).body()["error"]
            await self.send({"type": "conversation.item.input_audio_transcription.failed", "event_id": event_id(), "item_id": item, "content_index": 0, "error": error})
        finally:
            path.unlink(missing_ok=True)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _write_wav(path: Path, turn: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(turn, -1, 1) * 32767).astype("<i2").tobytes())
