"""A user turn's audio to its transcript, by the local speech-to-text model a session names,
as ``conversation.item.input_audio_transcription.delta`` (a segment each, as the model
finds them) and ``.completed`` events, or ``.failed`` (the session goes on)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from ...backends import capabilities
from ...backends.base import Serving, Stream
from ...errors import OpenAIError, answered, bad_request
from ...errors import unsupported_value as unsupported
from ...json.types import Json
from .. import audio
from ..services import Services
from .audio_in import Turn
from .events import TRANSCRIPTION, Gate, Send, error_event, event_id, only

LOGPROBS = "item.input_audio_transcription.logprobs"
CLIENT_CLOSED_REQUEST = 499


def checked_config(services: Services, config: Json, param: str) -> Json:
    """A session's ``transcription`` configuration (``model``, ``language``, ``prompt``), or
    the 400 naming what cannot be: its model must be a local speech-to-text model."""
    only(config, ("model", "language", "prompt"), param)
    model_id = config.get("model")
    backend = services.registry.backend_for_or_none(str(model_id))
    if backend is None or backend.serving("createTranscription") is not Serving.HERE:
        raise unsupported(f"{param}.model", f"'{model_id}' is not a local speech-to-text model")
    return config


class Heard:
    """What a transcription found: its text (None when it failed) and the language it heard,
    with the model's certainty of it; its usage and status, for the metrics."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.language = ""
        self.certainty = 0.0
        self.usage: Json | None = None
        self.status = CLIENT_CLOSED_REQUEST  # as the metrics count it (an HTTP status)


CERTAIN = 0.8
"""How sure Whisper must be of a turn's language for the session to hold it."""


class Language:
    """The language a session's speech is in: the one its configuration names, else the
    first one Whisper heard surely, held for the turns after: a conversation keeps its
    language, and a short turn's detection may waver. Detecting costs little (it reads the
    encoder pass the transcription makes anyway: ``backends/audio/whisper.py``)."""

    def __init__(self) -> None:
        self.held: str | None = None

    def config(self, config: Json) -> Json:
        return {**config, "language": self.held} if self.held and not config.get("language") else config

    def learn(self, heard: "Heard") -> None:
        if self.held is None and heard.text and heard.certainty >= CERTAIN:
            self.held = heard.language


class Hearing:
    """How a session hears its turns: one at a time, in the order they were spoken; in the
    language it holds (``Language``); at most ``realtime_pending_turns`` waiting (one more is
    refused), each as a file, not in memory; each a request of the session's key through its
    ``Gate`` (checked again, rate-limited, counted in the usage: a revoked key's session ends
    at its next turn); all stopped when the session closes."""

    def __init__(self, services: Services, gate: Gate, send: Send) -> None:
        self.services = services
        self.gate = gate
        self.send = send
        self.pending = services.settings.realtime_pending_turns
        self.language = Language()
        self.in_order = asyncio.Lock()  # first come, first served
        self.tasks: set[asyncio.Task] = set()

    def room(self) -> None:
        """Refuse a turn when the session's pending turns wait already (before it becomes an item)."""
        if len(self.tasks) >= self.pending:
            raise bad_request(
                f"At most {self.pending} turns wait to be heard (realtime_pending_turns); wait for one.", None, "too_many_pending_turns"
            )

    def start(self, work: Coroutine[Any, Any, object], item: str) -> None:
        """Hear a turn in the background (``work`` calls ``hear``), once ``room`` allowed it."""
        task = asyncio.create_task(work, name=f"realtime turn {item}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def hear(self, config: Json, logprobs: bool, turn: Turn, announced: bool) -> Heard:
        """``turn`` transcribed as ``config`` asks, its events sent if ``announced`` (a
        conversation hears every turn, and shows the transcripts only when asked)."""
        send = self.send if announced else _quiet
        try:
            # In line before its file is written: the turns are admitted and heard in the order
            # they were committed (a short turn's file, written first, took the lock ahead of
            # a long turn's and counted against the audio megabytes before it).
            async with self.in_order:
                try:
                    path = await turn.save(self.services.settings.data_dir / "tmp")
                except OSError as exc:  # a full disk: this turn fails, the session goes on
                    await self._refused(turn.item, answered(exc), announced)
                    return Heard()
                config = self.language.config(config)
                try:
                    # Its WAV file's bytes, as an upload's count against the audio megabytes a minute.
                    audio_bytes = path.stat().st_size
                    async with self.gate.admit(TRANSCRIPTION, config["model"], audio_bytes=audio_bytes) as admission:
                        heard = await transcribe(self.services, config, logprobs, turn, send)
                        # Its tokens as the event shows them, and its audio's length: what
                        # a transcription is priced by (the spend is whole).
                        usage = {**heard.usage, "seconds": turn.seconds} if heard.usage else None
                        admission.finished(heard.status, usage)
                except OpenAIError as error:  # refused: a rate limit, a revoked key (the session ends)
                    await self._refused(turn.item, error, announced)
                    return Heard()
                self.language.learn(heard)
                return heard
        finally:
            turn.discard()

    async def _refused(self, item: str, error: OpenAIError, announced: bool) -> None:
        if announced:
            await self.send(_failed(item, error.body()["error"]))
        else:
            await self.send(error_event(error))

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _quiet(event: Json) -> None:
    """Events of a transcription the session did not ask to see."""


def _failed(item: str, error: Json) -> Json:
    # The document types each of the error's fields as a string: an unset one is left out.
    error = {key: value for key, value in error.items() if value is not None}
    return {"type": "conversation.item.input_audio_transcription.failed", "event_id": event_id(), "item_id": item, "content_index": 0, "error": error}


async def transcribe(services: Services, config: Json, logprobs: bool, turn: Turn, send: Send) -> Heard:
    """Transcribe ``turn`` (its WAV file) as ``config`` asks (``model``, ``language``,
    ``prompt``), sending its events for its item."""
    heard = Heard()
    item, model_id = turn.item, config["model"]
    body: Json = {"model": model_id, "stream": True, "response_format": "json"}
    for field in ("language", "prompt"):
        if config.get(field):
            body[field] = config[field]
    if logprobs:
        body["include"] = ["logprobs"]
    try:
        backend = services.registry.serving(model_id, capabilities.TRANSCRIPTION)
        events = await backend.transcription(model_id, audio.transcription_params(body, str(turn.path), "transcribe"))
        async for event in audio.transcription_events(_watched(events, heard), body):
            common = {"event_id": event_id(), "item_id": item, "content_index": 0}
            extra = {"logprobs": event["logprobs"]} if "logprobs" in event else {}
            if event["type"] == "transcript.text.delta":
                await send({"type": "conversation.item.input_audio_transcription.delta", **common, "delta": event["delta"], **extra})
            else:
                done = {"transcript": event["text"], "usage": event["usage"], **extra}
                await send({"type": "conversation.item.input_audio_transcription.completed", **common, **done})
                heard.text, heard.usage, heard.status = event["text"], event["usage"], 200
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = answered(exc)
        heard.status = error.status
        await send(_failed(item, error.body()["error"]))
    return heard


async def _watched(events: Stream[Json], heard: Heard) -> Stream[Json]:
    """The engine's events, passed on; its ``info`` (the language) noted in ``heard``."""
    try:
        async for event in events:
            if event.get("event") == "info":
                heard.language, heard.certainty = event["language"], event.get("language_probability", 1.0)
            yield event
    finally:
        await events.aclose()
