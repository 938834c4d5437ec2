"""Tag ``Audio``: transcriptions, translations and speech, for local audio models
(``backends/audio/``); a model of an upstream API goes to it (``serves`` is false there)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio.to_thread

from ..backends.base import Serving
from ..backends.capabilities import FORWARDING, SPEECH, TRANSCRIPTION
from ..errors import bad_request, file_too_large
from ..http import context
from ..http.context import current
from ..http.forwarding import forward_form
from ..http.project_limits import admit_model
from ..http.rendering import bytes_stream, json_response, text_response
from ..http.sse import event_stream
from ..serving import audio
from ..settings import Settings
from ..spec.forms import request_form_fields

COPY_PART = 1 << 20
# The forms whose file is audio, bounded by the file's limit (``max_audio_bytes``) and room for
# the other fields of the form rather than by ``max_body_bytes`` (``body_limits``).
FORM_PATHS = ("/v1/audio/transcriptions", "/v1/audio/translations")
FORM_FIELDS_ROOM = 1 << 20


def body_limits(settings: Settings) -> dict[str, int]:
    """The most bytes a transcription's or translation's body may have (``app/chain.py``)."""
    return {path: settings.max_audio_bytes + FORM_FIELDS_ROOM for path in FORM_PATHS}



async def create_transcription(body: dict[str, Any], file: Any = None, **_: Any):
    return await _transcribe(body, file, "transcribe", "createTranscription")


async def create_translation(body: dict[str, Any], file: Any = None, **_: Any):
    return await _transcribe(body, file, "translate", "createTranslation")


async def create_speech(body: dict[str, Any]):
    services = current()
    model_id = body["model"]
    backend = services.registry.serving(model_id, SPEECH)
    params = audio.speech_params(body, services.settings.voices)
    events = await backend.speech(model_id, params)
    _measured(model_id, {"characters": len(body["input"])})  # usage: what is spoken, once accepted
    if body.get("stream_format") == "sse":
        return event_stream(audio.speech_events(events))
    return bytes_stream(audio.speech_bytes(events), audio.media_type(params["format"]))


async def _transcribe(body: dict[str, Any], file: Any, task: str, operation_id: str):
    services = current()
    upload = file or body.get("file")
    if upload is None or not hasattr(upload, "read"):
        raise bad_request("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    body = request_form_fields()
    model_id = body["model"]
    context.record().model = model_id  # for the metrics, as routing by model does for JSON bodies
    upload.file.seek(0, os.SEEK_END)  # spooled already: its size, read from the file's end
    await admit_model(model_id, audio_bytes=upload.file.tell())  # the project's limits (audio megabytes)
    if services.registry.backend_for(model_id).serving(operation_id) is Serving.FORWARDED:
        upstream = services.registry.serving(model_id, FORWARDING)
        content = await anyio.to_thread.run_sync(_read_all, upload.file)
        fields = {name: value for name, value in body.items() if name != "file"}
        return await forward_form(upstream, fields, (upload.filename or "audio", content, upload.content_type or ""))
    backend = services.registry.serving(model_id, TRANSCRIPTION)  # before the upload is copied
    path = await anyio.to_thread.run_sync(_saved, upload.file, services.settings.data_dir / "tmp", services.settings.max_audio_bytes)
    try:
        params = audio.transcription_params(body, str(path), task)
        events = await backend.transcription(model_id, params)
        measured = functools.partial(_seconds, model_id)
        if body.get("stream"):
            # The file is read by the worker before its first event: it can go now.
            return event_stream(audio.transcription_events(events, body, measured))
        answer = await audio.transcription_answer(events, body, task, measured)
    finally:
        path.unlink()
    if isinstance(answer, str):
        return text_response(answer, audio.TEXT_FORMATS[body.get("response_format") or "json"])
    return json_response(answer)


def _measured(model_id: str, usage: dict[str, Any]) -> None:
    """Usage of a local audio answer, recorded once (the metrics' one interface: the answer's
    own ``usage`` is then not read again)."""
    context.record().tokens_counted = True
    metrics = current().metrics
    if metrics is not None:  # services built without metrics (a test's) count nothing
        metrics.count_tokens(model_id, usage)


def _seconds(model_id: str, seconds: float) -> None:
    _measured(model_id, {"seconds": seconds})


def _read_all(source) -> bytes:
    source.seek(0)
    return source.read()


def _saved(source, folder: Path, limit: int) -> Path:
    """The upload in a file of its own, for the audio worker to read (the caller removes it).
    Empty: 400 naming ``file``; over ``limit``: OpenAI's 413."""
    source.seek(0, 2)
    size = source.tell()
    if not size:
        raise bad_request("The audio file is empty.", "file", "invalid_value")
    if size > limit:
        raise file_too_large(limit, size)
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=folder, prefix="audio-")
    try:
        source.seek(0)
        with os.fdopen(handle, "wb") as target:
            while chunk := source.read(COPY_PART):
                target.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)
