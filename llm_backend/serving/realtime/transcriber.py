"""A user turn's audio to its transcript, by the local speech-to-text model a session names,
as ``conversation.item.input_audio_transcription.delta`` (a segment each, as the model
finds them) and ``.completed`` events, or ``.failed`` (the session goes on)."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from collections.abc import Coroutine
from typing import Any

import numpy as np

from ...backends.base import Serving
from ...errors import answered, bad_request
from .. import audio
from ..services import Services
from .audio_in import RATE
from .events import Json, Send, event_id, only, unsupported

LOGPROBS = "item.input_audio_transcription.logprobs"
MAX_PENDING = 4
"""A session's turns committed and not yet heard, at most."""


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
    with the model's certainty of it."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.language = ""
        self.certainty = 0.0


CERTAIN = 0.8
"""How sure Whisper must be of a turn's language for the session to hold it."""


class Language:
    """The language a session's speech is in: the one its configuration names, else the
    first one Whisper heard surely, held for the turns after. Whisper detects a language by
    encoding a whole 30-second window (0.75 s of a short turn's 1.6 s here), and a
    conversation keeps its language; name ``language`` to fix it from the start."""

    def __init__(self) -> None:
        self.held: str | None = None

    def config(self, config: Json) -> Json:
        return {**config, "language": self.held} if self.held and not config.get("language") else config

    def learn(self, heard: "Heard") -> None:
        if self.held is None and heard.text and heard.certainty >= CERTAIN:
            self.held = heard.language


class Hearing:
    """How a session hears its turns: one at a time, in the order they were spoken; in the
    language it holds (``Language``); at most ``MAX_PENDING`` waiting (one more is refused);
    all stopped when the session closes."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.language = Language()
        self.in_order = asyncio.Lock()  # first come, first served
        self.tasks: set[asyncio.Task] = set()

    def room(self) -> None:
        """Refuse a turn when ``MAX_PENDING`` wait already (before it becomes an item)."""
        if len(self.tasks) >= MAX_PENDING:
            raise bad_request(f"At most {MAX_PENDING} turns wait to be heard; wait for one.", None, "too_many_pending_turns")

    def start(self, work: Coroutine[Any, Any, None], item: str) -> None:
        """Hear a turn in the background (``work`` calls ``hear``), once ``room`` allowed it."""
        task = asyncio.create_task(work, name=f"realtime turn {item}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def hear(self, config: Json, logprobs: bool, item: str, turn: np.ndarray, send: Send) -> "Heard":
        async with self.in_order:
            heard = await transcribe(self.services, self.language.config(config), logprobs, item, turn, send)
            self.language.learn(heard)
            return heard

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def transcribe(services: Services, config: Json, logprobs: bool, item: str, turn: np.ndarray, send: Send) -> Heard:
    """Transcribe ``turn`` (16 kHz float) as ``config`` asks (``model``, ``language``,
    ``prompt``), sending its events for ``item``."""
    heard = Heard()
    model_id = config["model"]
    folder = services.settings.data_dir / "tmp"
    path = folder / f"realtime-{item}.wav"
    body: Json = {"model": model_id, "stream": True, "response_format": "json"}
    for field in ("language", "prompt"):
        if config.get(field):
            body[field] = config[field]
    if logprobs:
        body["include"] = ["logprobs"]
    try:
        await asyncio.to_thread(_write_wav, path, turn, folder)
        backend = services.registry.backend_for(model_id)
        events = await backend.transcription(model_id, audio.transcription_params(body, str(path), "transcribe"))
        async for event in audio.transcription_events(_watched(events, heard), body):
            common = {"event_id": event_id(), "item_id": item, "content_index": 0}
            extra = {"logprobs": event["logprobs"]} if "logprobs" in event else {}
            if event["type"] == "transcript.text.delta":
                await send({"type": "conversation.item.input_audio_transcription.delta", **common, "delta": event["delta"], **extra})
            else:
                done = {"transcript": event["text"], "usage": event["usage"], **extra}
                await send({"type": "conversation.item.input_audio_transcription.completed", **common, **done})
                heard.text = event["text"]
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = answered(exc).body()["error"]
        await send({"type": "conversation.item.input_audio_transcription.failed", "event_id": event_id(), "item_id": item, "content_index": 0, "error": error})
    finally:
        path.unlink(missing_ok=True)
    return heard


async def _watched(events: AsyncIterator[Json], heard: Heard) -> AsyncIterator[Json]:
    """The engine's events, passed on; its ``info`` (the language) noted in ``heard``."""
    try:
        async for event in events:
            if event.get("event") == "info":
                heard.language, heard.certainty = event["language"], event.get("language_probability", 1.0)
            yield event
    finally:
        await events.aclose()


def _write_wav(path: Path, turn: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(turn, -1, 1) * 32767).astype("<i2").tobytes())
