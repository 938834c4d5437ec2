"""A Realtime transcription session (``/v1/realtime?intent=transcription``): audio in
(``input_audio.py``), one user item per turn, its transcript as
``conversation.item.input_audio_transcription.*`` (``transcriber.py``), transcribed beside
the audio that keeps coming (``transcriber.Hearing``), each turn a request of the key."""

from __future__ import annotations

import time

from ...errors import bad_request
from ...errors import unsupported_value as unsupported
from ...json.types import Json
from ..services import Services
from .audio_in import Turn
from .events import Gate, Send, checked_config_size, event_id, new_id, only, user_audio_item
from .input_audio import InputAudio
from .transcriber import LOGPROBS, Hearing, checked_config


class TranscriptionSession:
    def __init__(self, services: Services, send: Send, gate: Gate, default_model: str) -> None:
        self.services = services
        self.send = send
        self.id = new_id("sess")
        self.expires_at = int(time.time() + services.settings.realtime_session_seconds)
        self.transcription: Json = {"model": default_model, "language": None, "prompt": ""}
        self.include: list[str] = []
        self.item_before: str | None = None  # the item before the turn being committed
        self.hearing = Hearing(services, gate, send)
        self.input = InputAudio(services.settings, send, self._accept, self._turn, respond=False)

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

    def models(self) -> list[str]:
        """The models the session uses (``sessions.ready``)."""
        return [self.transcription["model"]]

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
        checked_config_size(transcription, self.services.settings.realtime_config_bytes, "session")
        self.input.apply(audio_format, detection)
        self.transcription, self.include = transcription, list(session.get("include", self.include))

    async def handle(self, kind: str, event: Json) -> None:
        """Any event beyond ``session.update`` and the input audio buffer's."""
        raise bad_request(f"'{kind}' is not available in a transcription session.", "type", "unsupported_value")

    def _accept(self, item: str) -> None:
        self.hearing.room()
        self.item_before, self.input.previous_item = self.input.previous_item, item

    async def _turn(self, turn: Turn) -> None:
        previous = self.item_before
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "event_id": event_id(), "previous_item_id": previous, "item": user_audio_item(turn.item)})
        logprobs = LOGPROBS in self.include
        self.hearing.start(self.hearing.hear(dict(self.transcription), logprobs, turn, announced=True), turn.item)

    async def close(self) -> None:
        await self.hearing.close()
        self.input.close()
