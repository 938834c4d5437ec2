"""What every backend is (``Backend``), what it may serve (``Capability``, ``ModelKind``:
the operations themselves are ``capabilities.py``'s), and what answers and requests pass
between backends and their callers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from ..json.types import Json


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


T_co = TypeVar("T_co", covariant=True)


class Stream(Protocol[T_co]):
    """An answer's chunks as they come, which whoever reads them may close before the end
    (the client left): closing releases what the stream holds (a worker's sequence, the
    model's hold, an upstream request). An async generator is one; so are the wrappers that
    hold a first chunk or a model (``llama/streams.py``)."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    def __anext__(self) -> Awaitable[T_co]: ...

    def aclose(self) -> Awaitable[None]: ...


@dataclass
class Relayed:
    """An answer already in wire form, from an upstream API: passed on to the client as it
    came (status, headers, bytes), so nothing is parsed or re-encoded on the way.

    ``content`` is the whole body when it was small and complete; otherwise ``chunks``
    yields it as it arrives and ``close`` releases the upstream request (client gone)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes | None = None
    chunks: Stream[bytes] | None = None
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


# A non-streaming answer is one OpenAI object; a streaming one, the chunks as they come
# (``Objects``: a local engine's, always); an upstream's answer is relayed as it is.
Objects = Json | Stream[Json]
Answer = Objects | Relayed


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
    # What the model reads (local models: text, and image where it has a projector, issue #60):
    # an extension field, under OpenRouter's ``architecture`` (``input_modalities``, what
    # clients of OpenRouter's model list, its SDKs among them, read to offer image uploads);
    # OpenAI's card says none, LiteLLM's ``supports_vision`` is its own /model/info's, not a card's.
    input_modalities: tuple[str, ...] | None = None

    def to_openai(self) -> Json:
        card = {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}
        if self.context_length is not None:
            card.update(context_length=self.context_length, max_model_len=self.context_length)
        if self.description is not None:
            card["description"] = self.description
        if self.input_modalities is not None:
            card["architecture"] = {
                "modality": "+".join(self.input_modalities) + "->text",
                "input_modalities": list(self.input_modalities),
                "output_modalities": ["text"],
            }
        return card


B = TypeVar("B")


class Capability(Generic[B]):
    """A family of operations a backend may serve for a model (``capabilities.py``: chat,
    embeddings, speech...): the Protocol ``B`` of its methods, and what a refusal calls it.
    Typed by that Protocol, so ``ModelRegistry.serving(model_id, CHAT)`` is a ``ChatBackend``
    to the type checker, and only what the model serves is reached through it."""

    __slots__ = ("name", "what", "protocol")

    def __init__(self, name: str, what: str, protocol: type) -> None:
        self.name = name
        self.what = what
        """As the refusal says it: ``The model `x` does not support <what>: ...``."""
        self.protocol = protocol

    def __repr__(self) -> str:
        return f"Capability({self.name!r})"


@dataclass(frozen=True)
class ModelKind:
    """What a model is, as its backend declares it (``Backend.model_kind``): the capabilities
    it is served with, and what the one refusal of any other says it is
    (``ModelRegistry.serving``)."""

    what: str
    """``a text model (use /v1/chat/completions)``, ``an embedding model (use /v1/embeddings)``."""
    capabilities: frozenset[Capability[Any]]


class Backend(Protocol):
    """What every backend has, whatever it serves: routing and the model list (the
    registry), the ``Serving`` predicate (forwarding, validation), its models' admin
    statuses, and what each model is (``model_kind``). Its operations are its capabilities'
    (``capabilities.py``), reached through ``ModelRegistry.serving``."""

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

    def model_kind(self, model_id: str) -> ModelKind:
        """What the model ``model_id`` (one this backend claims) is, and so what it serves."""
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

    def serving(self, operation_id: str | None) -> Serving:
        """How the operation is answered for this backend's models (``Serving``); a
        ``FORWARDED`` one goes to its ``Forwarding`` capability's ``forward``."""
        ...

    # --- the admin listing (empty where no model is loaded here: ``ManagedModels``) ------

    def loaded_models(self) -> list[str]:
        """Ids of the models loaded right now (configured ids, not aliases)."""
        ...

    def statuses(self) -> list[Json]:
        """One admin status object per configured model (see extensions.yaml ``ModelStatus``)."""
        ...
