"""A Realtime session of the kind asked for, configured: for a connection
(``http/realtime_socket.py``: ``?model=`` or ``?intent=transcription``, or the session an
ephemeral client secret was made for) and for ``POST /v1/realtime/client_secrets``, which
answers the session object a connection with its secret will start with; and the models a
session uses, loaded before it starts."""

from __future__ import annotations

import asyncio

from ...backends.capabilities import MANAGED
from ...errors import bad_request
from ...json.types import Json
from ..services import Services
from .conversation import ConversationSession
from .events import Gate, Send
from .transcription import TranscriptionSession

Session = ConversationSession | TranscriptionSession
DEFAULT_VOICE = "alloy"


def hearing_model(services: Services) -> str:
    """The local speech-to-text model sessions hear with (``whisper-1`` when it is one)."""
    settings = services.settings
    if not settings.transcription_model:
        raise bad_request("No local speech-to-text model is configured: realtime sessions need one.", None, "unsupported_value")
    return "whisper-1" if "whisper-1" in settings.transcription_model_aliases else settings.transcription_model


def session_for(services: Services, send: Send, gate: Gate, kind: str, model: str | None, config: Json | None = None) -> Session:
    """A session of ``kind`` (``realtime`` or ``transcription``), ``config`` applied as a
    ``session.update`` would (a 400 naming what cannot be)."""
    hearing = hearing_model(services)
    session: Session
    if kind == "transcription":
        session = TranscriptionSession(services, send, gate, hearing)
    else:
        model = model or services.settings.models[0].id  # the first local model, as the default
        services.registry.backend_for(model)  # 404 when it does not exist
        session = ConversationSession(services, send, gate, model, hearing, DEFAULT_VOICE)
    if config:
        session.update({key: value for key, value in config.items() if key != "model"} | {"type": kind})
    return session


async def ready(services: Services, session: Session) -> None:
    """The models ``session`` uses as configured now (the speech-to-text model; a
    conversation's chat model, and its speech model when it answers in audio) loaded before
    it starts, as OpenAI's are: its first turn is answered as soon as the later ones (the
    audio models used to load at the first turn: 7.1-8.6 s for it, 5.2 s for the others, issue
    #41), and a session whose models cannot load fails now (503 ``model_load_failed``), not
    at its first turn. A model configured later by ``session.update`` loads on first use."""
    await asyncio.gather(*(_loaded(services, model_id) for model_id in dict.fromkeys(session.models())))


async def _loaded(services: Services, model_id: str) -> None:
    backend = services.registry.backend_for(model_id)
    if MANAGED in backend.model_kind(model_id).capabilities:  # an upstream's models are not ours to load
        await services.registry.load(model_id)
