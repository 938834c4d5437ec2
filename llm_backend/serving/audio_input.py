"""Audio in chat: ``input_audio`` content parts of chat completions for local text models,
transcribed by the local speech-to-text model and passed on as text. (The document's
Responses input messages have no ``input_audio`` part: validation refuses it there.)

A local text model reads text only; rather than refusing a voice message, the service
hears it first: each part becomes a text part holding its transcript, so the transcript's
tokens are counted in the answer's ``prompt_tokens`` like any text.
Upstream models get the audio as it was sent. With ``audio_in_chat`` off (or no
speech-to-text model) such a part is refused with a 400 naming it.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from typing import Any, cast

from ..backends.capabilities import TRANSCRIPTION
from ..errors import OpenAIError, bad_request
from ..json.types import Json
from . import audio
from .services import Services

# What OpenAI's input_audio parts carry: wav or mp3 (both decoded by PyAV in the worker).
FORMATS = ("wav", "mp3")


def _has_audio(messages: Any) -> bool:
    return isinstance(messages, list) and any(
        isinstance(message, dict)
        and isinstance(message.get("content"), list)
        and any(isinstance(part, dict) and part.get("type") == "input_audio" for part in message["content"])
        for message in messages
    )


async def transcribed(services: Services, model_id: str, messages: Any, predicted: bool = False) -> Any:
    """Chat ``messages`` with every ``input_audio`` part replaced by a text part of its
    transcript, when ``model_id`` is local. Beside a prediction (``predicted``) audio is
    refused, as OpenAI refuses it: predicted outputs take text only."""
    if not _has_audio(messages) or services.registry.backend_for(model_id) not in services.registry.local:
        return messages
    if predicted:
        raise bad_request("Unsupported parameter: audio inputs are not supported with predicted outputs.", "messages", "unsupported_parameter")
    changed = []
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            changed.append(message)
            continue
        parts = []
        for number, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "input_audio":
                param = f"messages[{index}].content[{number}]"
                part = {"type": "text", "text": await _transcript(services, part.get("input_audio") or {}, param)}
            parts.append(part)
        changed.append({**message, "content": parts})
    return changed


async def _transcript(services: Services, input_audio: Json, param: str) -> str:
    settings = services.settings
    if not settings.audio_in_chat or not settings.transcription_model:
        raise bad_request(
            f"'{param}': audio input is turned off here (audio_in_chat), and local models read text only.",
            param,
            "unsupported_parameter",
        )
    if input_audio.get("format") not in FORMATS:
        raise bad_request(f"'{param}.input_audio.format' must be one of: wav, mp3.", f"{param}.input_audio.format", "invalid_value")
    try:
        data = base64.b64decode(input_audio.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"'{param}.input_audio.data' is not base64.", f"{param}.input_audio.data", "invalid_value") from None
    if not data:
        raise bad_request(f"'{param}.input_audio.data' is empty.", f"{param}.input_audio.data", "invalid_value")
    folder = settings.data_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(dir=folder, prefix="audio-")
    try:
        with os.fdopen(handle, "wb") as target:
            target.write(data)
        model_id = settings.transcription_model
        backend = services.registry.serving(model_id, TRANSCRIPTION)
        params = audio.transcription_params({"model": model_id}, path, "transcribe")
        try:
            answer = await audio.transcription_answer(await backend.transcription(model_id, params), {}, "transcribe")
        except OpenAIError as exc:
            if exc.param == "file":  # the worker names the upload; here it is this part's data
                exc.param = f"{param}.input_audio.data"
            raise
    finally:
        os.unlink(path)
    return cast(Json, answer)["text"]  # asked in no format: json, an object
