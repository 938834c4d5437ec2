"""What a backend may serve, one family of operations at a time: each capability is a small
Protocol of its methods and a ``Capability`` naming it, and each backend declares what its
models are (``ModelKind``: a text model, an embedding model, an upstream API's...) and
implements only those capabilities' methods. Callers reach an operation through
``ModelRegistry.serving(model_id, CHAT)``, typed by the capability, which answers the one
refusal (400 ``model_not_supported`` naming ``model``: what the model is) for what the
model's backend does not serve: no backend refuses an operation one method at a time.

``FORWARDING`` is the request sent to the model's API as the client sent it (an operation
``Serving.FORWARDED`` for it); ``MANAGED`` the admin operations' loading and unloading."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..json.types import Json
from .base import Answer, Capability, ModelKind, Objects, Relayed, Stream, StreamedBody


@runtime_checkable
class ChatBackend(Protocol):
    """Chat completions, and what a caller that builds on them asks first (the Responses
    layer, the Messages service, a Realtime session, a moderation guard)."""

    async def chat_completion(self, model_id: str, request: Json) -> Answer: ...

    async def chat_completion_objects(self, model_id: str, request: Json) -> Objects:
        """The chat completion as OpenAI objects (the object, or its chunks), never relayed
        bytes: for serving code that builds its own answer on it (the Responses layer)."""
        ...

    async def check_reasoning_effort(self, model_id: str, effort: str | None) -> None:
        """Refuse (400 naming ``reasoning_effort``) an effort the model cannot honour before
        any answer is started (a background response is stored first); nothing where the
        model's answer says (an upstream's)."""
        ...

    def context_length(self, model_id: str) -> int | None:
        """The model's context window in tokens; None when it is not known here."""
        ...

    def sampling_defaults(self, model_id: str) -> Json:
        """The sampling parameters (``temperature``, ``top_p``, ``presence_penalty``,
        ``frequency_penalty``) a request for ``model_id`` that leaves them out is answered
        with, where they differ from OpenAI's defaults: for answers that report them (a
        Response object). Empty when unknown here (an upstream's own defaults)."""
        ...


@runtime_checkable
class Seeing(Protocol):
    def takes_images(self, model_id: str) -> bool:
        """Whether the model reads images (a local model with a projector, issue #60)."""
        ...


def takes_images(backend: Any, model_id: str) -> bool:
    """Whether ``model_id`` on ``backend`` reads images: a local model says so (``Seeing``);
    a model behind an upstream, or a pool's replicas, is asked with the image, and refuses
    it itself if it cannot."""
    return backend.takes_images(model_id) if isinstance(backend, Seeing) else True


@runtime_checkable
class PromptCounting(Protocol):
    async def prompt_tokens(self, model_id: str, request: Json) -> int:
        """The tokens the prompt of a chat ``request`` takes, as the model would read it
        (a local model's template and tokenizer: an upstream's count is its own operation)."""
        ...


@runtime_checkable
class CompletionBackend(Protocol):
    async def completion(self, model_id: str, request: Json) -> Answer: ...


@runtime_checkable
class EmbeddingBackend(Protocol):
    async def embedding(self, model_id: str, request: Json) -> Json | Relayed: ...


@runtime_checkable
class TranscriptionBackend(Protocol):
    async def transcription(self, model_id: str, request: Json) -> Stream[Json]:
        """Speech to text (``task``: transcribe or translate) of the audio file at
        ``request["path"]``: an ``info`` event (``language``, ``duration``), one ``segment``
        event per segment (its ``segment``: OpenAI's verbose_json fields), a ``usage`` event; see
        ``backends/audio/worker.py``. Errors before the first event are raised."""
        ...


@runtime_checkable
class SpeechBackend(Protocol):
    async def speech(self, model_id: str, request: Json) -> Stream[Json]:
        """Text to speech: ``audio`` events (``data``: base64 of the encoded file's next
        bytes) as each sentence is synthesized, then ``usage`` (``seconds``, ``phonemes``)."""
        ...


@runtime_checkable
class ModerationBackend(Protocol):
    async def moderation(self, model_id: str, request: Json) -> Json:
        """A createModeration answer, with ``usage`` (``prompt_tokens``) beside OpenAI's
        fields for the accounting (the controller takes it off)."""
        ...


@runtime_checkable
class Forwarding(Protocol):
    async def forward(self, method: str, path: str, query: bytes, headers: Any, content: bytes | StreamedBody | None) -> Relayed:
        """Any operation, verbatim, to the API behind this backend (``http/forwarding.py``)."""
        ...


@runtime_checkable
class ManagedModels(Protocol):
    """Models this service loads and unloads (the admin operations)."""

    async def load(self, model_id: str) -> Json:
        """Load the model ``model_id`` names (any of its ids) and return its status."""
        ...

    async def unload(self, model_id: str) -> Json:
        """Unload the model ``model_id`` names and return its status."""
        ...


CHAT: Capability[ChatBackend] = Capability("chat", "chat completions", ChatBackend)
PROMPT_TOKENS: Capability[PromptCounting] = Capability("prompt_tokens", "counting a prompt's tokens", PromptCounting)
COMPLETION: Capability[CompletionBackend] = Capability("completion", "completions", CompletionBackend)
EMBEDDING: Capability[EmbeddingBackend] = Capability("embedding", "embeddings", EmbeddingBackend)
TRANSCRIPTION: Capability[TranscriptionBackend] = Capability(
    "transcription", "audio transcriptions or translations", TranscriptionBackend
)
SPEECH: Capability[SpeechBackend] = Capability("speech", "speech", SpeechBackend)
MODERATION: Capability[ModerationBackend] = Capability("moderation", "moderations", ModerationBackend)
FORWARDING: Capability[Forwarding] = Capability("forwarding", "this operation", Forwarding)
MANAGED: Capability[ManagedModels] = Capability("managed", "loading and unloading", ManagedModels)

OPERATIONS = (CHAT, PROMPT_TOKENS, COMPLETION, EMBEDDING, TRANSCRIPTION, SPEECH, MODERATION, FORWARDING, MANAGED)
"""Every capability of this module (a family may bring its own: a ``Capability`` of its
Protocol, served by the backends that declare it)."""

TEXT_MODEL = ModelKind(
    "a text model (use /v1/chat/completions)", frozenset({CHAT, PROMPT_TOKENS, COMPLETION, EMBEDDING, MANAGED})
)
UPSTREAM_MODEL = ModelKind("a model of an upstream API", frozenset({CHAT, COMPLETION, EMBEDDING, FORWARDING}))
TRANSCRIPTION_MODEL = ModelKind(
    "a speech-to-text model (use /v1/audio/transcriptions or /v1/audio/translations)", frozenset({TRANSCRIPTION, MANAGED})
)
SPEECH_MODEL = ModelKind("a text-to-speech model (use /v1/audio/speech)", frozenset({SPEECH, MANAGED}))


def implemented(cls: type) -> frozenset[Capability[Any]]:
    """The capabilities of this module whose every method ``cls`` has."""
    return frozenset(capability for capability in OPERATIONS if issubclass(cls, capability.protocol))
