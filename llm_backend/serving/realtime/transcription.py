"""A Realtime transcription session (``/v1/realtime?intent=transcription``): audio in
(``input_audio.py``), one user item per turn, its transcript as
``conversation.item.input_audio_transcription.*`` (``transcriber.py``), transcribed beside
the audio that keeps coming (``transcriber.Hearing``)."""

from __future__ import annotations

import time

import numpy as np

from ...errors import bad_request
from ..services import Services
from .events import Json, Send, event_id, new_id, only, unsupported, user_audio_item
from .input_audio import InputAudio
from .transcriber import LOGPROBS, Hearing, checked_config


class TranscriptionSession:
    def __init__(self, services: Services, send: Send, default_model: str) -> None:
        self.services = services
        self.send = send
        self.id = new_id("sess")
        self.expires_at = int(time.time() + services.settings.realtime_session_seconds)
        self.transcription: Json = {"model": default_model, "language": None, "prompt": ""}
        self.include: list[str] = []
        self.input = InputAudio(send, self._turn, services.settings.max_audio_seconds, respond=False)
        self.hearing = Hearing(services)

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
        audio_format, detection = self.input.check(given, "session.audio.input")
        transcription = {**self.transcription, **(given.get("transcription") or {})}
        checked_config(self.services, transcription, "session.audio.input.transcription")
        self.input.apply(audio_format, detection)
        self.transcription, self.include = transcription, list(session.get("include", self.include))

    async def handle(self, kind: str, event: Json) -> None:
        """Any event beyond ``session.update`` and the input audio buffer's."""
        raise bad_request(f"'{kind}' is not available in a transcription session.", "type", "unsupported_value")

    async def _turn(self, item: str, turn: np.ndarray) -> None:
        self.hearing.room()
        previous, self.input.previous_item = self.input.previous_item, item
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "event_id": event_id(), "previous_item_id": previous, "item": user_audio_item(item)})
        logprobs = LOGPROBS in self.include
        self.hearing.start(self.hearing.hear(dict(self.transcription), logprobs, item, turn, self.send), item)

    async def close(self) -> None:
        await self.hearing.close()
