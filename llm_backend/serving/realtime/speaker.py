"""A response's speech, sentence by sentence as the model writes it: each whole sentence
goes to the local speech model (hibari) while the model writes the next, and its 24 kHz
pcm16 comes back in order (``on_audio``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import cast

from ...backends.capabilities import SPEECH
from .. import audio
from ..services import Services

SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
MIN_CHARACTERS = 12
"""A sentence shorter than this waits for the next ("Hi." alone would sound clipped)."""


def sentences(text: str) -> tuple[list[str], str]:
    """The whole sentences of ``text``, and what is left after them."""
    parts = SENTENCE_END.split(text)
    done, rest = [], ""
    for part in parts[:-1]:
        rest = f"{rest} {part}".strip()
        if len(rest) >= MIN_CHARACTERS:
            done.append(rest)
            rest = ""
    return done, f"{rest} {parts[-1]}".strip() if rest else parts[-1]


class Speaker:
    def __init__(self, services: Services, voice: str, speed: float, on_audio: Callable[[bytes], Awaitable[None]]) -> None:
        self.services = services
        self.voice = voice
        self.speed = speed
        self.on_audio = on_audio
        self.pending = ""
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._speak(), name="realtime speech")

    async def add(self, text: str) -> None:
        done, self.pending = sentences(self.pending + text)
        for sentence in done:
            self.queue.put_nowait(sentence)

    async def finish(self) -> None:
        """Say what is left and wait until all is said."""
        if self.pending.strip():
            self.queue.put_nowait(self.pending)
        self.pending = ""
        self.queue.put_nowait(None)
        await self.task

    async def stop(self) -> None:
        """Stop speaking at once (a cancelled response)."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _speak(self) -> None:
        settings = self.services.settings
        model_id = cast(str, settings.speech_model)  # set as the settings are built (default_voices)
        backend = self.services.registry.serving(model_id, SPEECH)
        while (sentence := await self.queue.get()) is not None:
            body = {"model": model_id, "input": sentence, "voice": self.voice, "response_format": "pcm", "speed": self.speed}
            events = await backend.speech(model_id, audio.speech_params(body, settings.voices))
            carry = b""
            async for chunk in audio.speech_bytes(events):
                chunk, carry = carry + chunk, b""
                if len(chunk) % 2:  # whole samples only
                    chunk, carry = chunk[:-1], chunk[-1:]
                if chunk:
                    await self.on_audio(chunk)
