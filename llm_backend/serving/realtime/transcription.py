"""A Realtime transcription session (``/v1/realtime?intent=transcription``): audio in
(``input_audio.py``), one user item per turn, its transcript as
``conversation.item.input_audio_transcription.*`` (``transcriber.py``), transcribed beside
the audio that keeps coming; at most ``MAX_PENDING`` turns wait to be transcribed."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from ...errors import bad_request
from ..services import Services
from .events import Json, Send, event_id, new_id, only, unsupported
from .input_audio import InputAudio
from .transcriber import LOGPROBS, Language, check_model, transcribe

MAX_PENDING = 4


class TranscriptionSession:
    def __init__(self, services: Services, send: Send, default_model: str) -> None:
        self.services = services
        self.send = send
        self.id = new_id("sess")
        self.expires_at = int(time.time() + services.settings.realtime_session_seconds)
        self.transcription: Json = {"model": default_model, "language": None, "prompt": ""}
        self.include: list[str] = []
        self.input = InputAudio(send, self._turn, services.settings.max_audio_seconds, respond=False)
        self.tasks: set[asyncio.Task] = set()
        self.in_order = asyncio.Lock()  # first come, first served
        self.language = Language()

    def to_openai(self) -> Json:
        # Unset fields are left out: the document types them as strings, not null.
        transcription = {key: value for key, value in self.transcription.items() if value is not None}
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.id,
            "expires_at": self.expires_at,
            "include": list(self.include),
            "audio": {"input": {**self.input.to_openai(), "transcription": transcription}},
        }

    def update(self, session: Json) -> None:
        """``session.update``: every field honoured or refused naming it; nothing changes
        unless all of it can."""
        if session.get("type") != "transcription":
            raise unsupported("session.type", "this is a transcription session (connected with intent=transcription)")
        only(session, ("type", "audio", "include"), "session")
        audio_config = session.get("audio") or {}
        only(audio_config, ("input",), "session.audio")
        given = audio_config.get("input") or {}
        only(given, ("format", "transcription", "noise_reduction", "turn_detection"), "session.audio.input")
        transcription = {**self.transcription, **(given.get("transcription") or {})}
        only(transcription, ("model", "language", "prompt"), "session.audio.input.transcription")
        check_model(self.services, transcription["model"], "session.audio.input.transcription.model")
        audio_format, detection = self.input.check(given, "session.audio.input")
        self.input.apply(audio_format, detection)
        self.transcription, self.include = transcription, list(session.get("include", self.include))

    async def handle(self, kind: str, event: Json) -> None:
        """Any event beyond ``session.update`` and the input audio buffer's."""
        raise bad_request(f"'{kind}' is not available in a transcription session.", "type", "unsupported_value")

    async def _turn(self, item: str, turn: np.ndarray) -> None:
        if len(self.tasks) >= MAX_PENDING:
            raise bad_request(f"At most {MAX_PENDING} turns wait to be transcribed; wait for one.", None, "too_many_pending_turns")
        previous, self.input.previous_item = self.input.previous_item, item
        user_item = {"id": item, "type": "message", "object": "realtime.item", "status": "completed", "role": "user", "content": [{"type": "input_audio"}]}
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "event_id": event_id(), "previous_item_id": previous, "item": user_item})
        logprobs = LOGPROBS in self.include
        task = asyncio.create_task(self._transcribe(dict(self.transcription), logprobs, item, turn), name=f"realtime {item}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _transcribe(self, config: Json, logprobs: bool, item: str, turn: np.ndarray) -> None:
        async with self.in_order:  # turns are told in the order they were spoken
            self.language.learn(await transcribe(self.services, self.language.config(config), logprobs, item, turn, self.send))

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
