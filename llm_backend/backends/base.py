"""The one small interface every backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from ..json_types import Json


caller_headers: ContextVar[list[tuple[bytes, bytes]]] = ContextVar("caller_headers", default=[])
"""The raw headers of the client's request being served, set by the HTTP layer: an upstream
API is sent the client's ``OpenAI-*`` headers (and its key, when configured so)."""

background: ContextVar[bool] = ContextVar("background", default=False)
"""Set while a batch line is answered (``http/batch_lines.py``): low-priority work. A local
model answers it on its low-priority engine (``backends/llama/background.py``), so that
interactive requests never wait behind a batch."""

tenant: ContextVar[str] = ContextVar("tenant", default="")
"""Whose request is being served (the owner of what it stores), set by the HTTP layer with
the caller: a local engine reuses cached prompt KV only within one tenant (issue #34), and
routes a prompt to the engine holding its beginning only within one tenant."""

usage_withheld: ContextVar[Callable[[Json], None]] = ContextVar("usage_withheld", default=lambda usage: None)
"""Told the usage of an answer an upstream reported but the client did not ask to see (a
stream without ``include_usage``: ``upstream/stream_usage.py``), set by the HTTP layer per
request: its meter counts it as the answer's (``http/metrics.py``)."""

trace_headers: ContextVar[list[tuple[bytes, bytes]]] = ContextVar("trace_headers", default=[])
"""The W3C ``traceparent`` (and ``tracestate``) of the request's span, set by the HTTP layer
when tracing is on (``http/tracing.py``): an upstream's request is sent them in place of the
client's, so it joins the client's trace as a child of this service's span."""


def _no_phase(name: str) -> None:
    pass


engine_phase: ContextVar[Callable[[str], None]] = ContextVar("engine_phase", default=_no_phase)
"""Told when a request joins a local engine's line (``queue``), gets a worker's sequence
(``engine``) and gives it back (``end``), set by the HTTP layer when tracing is on: the
request's span gets its queue wait and engine time as child spans (``http/tracing.py``)."""

failover: ContextVar[bool] = ContextVar("failover", default=False)
"""Set by a model pool while it calls one deployment: a failure is then answered by another
deployment of the pool, so a backend reports it at once instead of retrying it itself."""


@dataclass
class Relayed:
    """An answer already in wire form, from an upstream API: passed on to the client as it
    came (status, headers, bytes), so nothing is parsed or re-encoded on the way.

    ``content`` is the whole body when it was small and complete; otherwise ``chunks``
    yields it as it arrives and ``close`` releases the upstream request (client gone)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    close: Callable[[], Awaitable[None]] | None = None


class Serving(Enum):
    """How a backend answers an operation for one of its models: the one predicate behind
    forwarding (``http/forwarding.py``), the rule for fields beyond the spec and the local
    extensions' range checks (``spec/validation.py``), and the Responses API served here."""

    HERE = "here"
    """This service's own code answers (a local engine; the Responses layer over an
    upstream's chat): every field is ours to honour, or to refuse with a 400."""
    RELAYED = "relayed"
    """The backend's method sends the body on to its API as it came (an upstream's chat
    completions): fields beyond the spec are that API's to define."""
    FORWARDED = "forwarded"
    """No method of the backend answers it: the request goes to its API verbatim."""


@dataclass
class StreamedBody:
    """A request body sent on as it is read, not held in memory (a forwarded upload)."""

    size: int
    chunks: Callable[[], AsyncIterator[bytes]]
    """The body from its start, again on each call (a retry sends it again)."""


# A non-streaming answer is one OpenAI object; a streaming one, the chunks as they come;
# an upstream's answer is relayed as it is.
Answer = Json | AsyncIterator[Json] | Relayed


@dataclass(frozen=True)
class ModelCard:
    """A model id as ``GET /v1/models`` lists it (aliases get a card each)."""

    id: str
    owned_by: str
    created: int
    # The model's context window where known (local models): an extension field, under the
    # names clients read it by (OpenRouter's and LM Studio's ``context_length``, vLLM's
    # ``max_model_len``), so an agent can size its prompts and answers (issue #49).
    context_length: int | None = None
    # What the model is, where a client should know it (a synthetic model's answers mean
    # nothing): an extension field, under OpenRouter's name for it.
    description: str | None = None

    def to_openai(self) -> Json:
        card = {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}
        if self.context_length is not None:
            card.update(context_length=self.context_length, max_model_len=self.context_length)
        if self.description is not None:
            card["description"] = self.description
        return card


class Backend(Protocol):
    """Everything callers use of a backend: the registry (routing, model list, lifecycle),
    the controllers (operations) and forwarding (``http/forwarding.py``)."""

    name: str
    """What logs, metrics and a pool's status call this backend (``local``, an upstream's name)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def readiness(self) -> tuple[bool, str]:
        """Whether the backend can serve now, and why not (``/ready``)."""
        ...

    async def probe(self) -> bool:
        """Whether the backend answers again (a pool's check of an ejected deployment)."""
        ...

    # --- models -------------------------------------------------------------------------

    def claims(self, model_id: str) -> bool:
        """Whether requests for ``model_id`` are this backend's."""
        ...

    def configured_ids(self) -> list[str]:
        """The model ids configured here by name (not by pattern): an id that several
        backends name is served by all of them, as a pool (``backends/pool.py``)."""
        ...

    def canonical_id(self, model_id: str) -> str:
        """The id of the model ``model_id`` names here (a local model's own id for its
        aliases and personas, an upstream alias's target): ``ModelRegistry.canonical``."""
        ...

    def models(self) -> list[ModelCard]:
        """Every id served, loaded or not: models, aliases, personas."""
        ...

    async def refresh_models(self) -> None:
        """Bring ``models()`` up to date (an upstream's list is fetched and cached)."""
        ...

    async def retrieve_model(self, model_id: str) -> Json | Relayed:
        """One model as ``GET /v1/models/{model}`` shows it."""
        ...

    # --- operations ---------------------------------------------------------------------

    def serving(self, operation_id: str | None) -> Serving:
        """How the operation is answered for this backend's models (``Serving``); a
        ``FORWARDED`` one goes to ``forward``."""
        ...

    async def prompt_tokens(self, model_id: str, request: Json) -> int:
        """The tokens the prompt of a chat ``request`` takes, as the model would read it
        (answered here only: ``Serving.HERE`` backends of local models)."""
        ...

    def context_length(self, model_id: str) -> int | None:
        """The model's context window in tokens; None when it is not known here."""
        ...

    async def check_reasoning_effort(self, model_id: str, effort: str | None) -> None:
        """Refuse (400 naming ``reasoning_effort``) an effort the model cannot honour before
        any answer is started (a background response is stored first); nothing where the
        model's answer says (an upstream's)."""
        ...

    def sampling_defaults(self, model_id: str) -> Json:
        """The sampling parameters (``temperature``, ``top_p``, ``presence_penalty``,
        ``frequency_penalty``) a request for ``model_id`` that leaves them out is answered
        with, where they differ from OpenAI's defaults: for answers that report them (a
        Response object). Empty when unknown here (an upstream's own defaults)."""
        ...

    async def chat_completion(self, model_id: str, request: Json) -> Answer: ...

    async def chat_completion_objects(self, model_id: str, request: Json) -> Json | AsyncIterator[Json]:
        """The chat completion as OpenAI objects (the object, or its chunks), never relayed
        bytes: for serving code that builds its own answer on it (the Responses layer)."""
        ...

    async def completion(self, model_id: str, request: Json) -> Answer: ...

    async def embedding(self, model_id: str, request: Json) -> Json | Relayed: ...

    async def transcription(self, model_id: str, request: Json) -> AsyncIterator[Json]:
        """Speech to text (``task``: transcribe or translate) of the audio file at
        ``request["path"]``: an ``info`` event (``language``, ``duration``), one ``segment``
        event per segment (its ``segment``: OpenAI's verbose_json fields), a ``usage`` event; see
        ``backends/audio/worker.py``. Errors before the first event are raised."""
        ...

    async def speech(self, model_id: str, request: Json) -> AsyncIterator[Json]:
        """Text to speech: ``audio`` events (``data``: base64 of the encoded file's next
        bytes) as each sentence is synthesized, then ``usage`` (``seconds``, ``phonemes``)."""
        ...

    async def moderation(self, model_id: str, request: Json) -> Json:
        """A createModeration answer, with ``usage`` (``prompt_tokens``) beside OpenAI's
        fields for the accounting (the controller takes it off)."""
        ...

    async def forward(self, method: str, path: str, query: bytes, headers: Any, content: bytes | StreamedBody | None) -> Relayed:
        """Any operation, verbatim, to the API behind this backend (upstream backends)."""
        ...

    # --- model management (backends whose models this service loads) ---------------------

    manages_models: bool
    """True when the models are loaded and unloaded here (the admin operations)."""

    def loaded_models(self) -> list[str]:
        """Ids of the models loaded right now (configured ids, not aliases)."""
        ...

    def statuses(self) -> list[Json]:
        """One admin status object per configured model (see extensions.yaml ``ModelStatus``)."""
        ...

    async def load(self, model_id: str) -> Json:
        """Load the model ``model_id`` names (any of its ids) and return its status."""
        ...

    async def unload(self, model_id: str) -> Json:
        """Unload the model ``model_id`` names and return its status."""
        ...
