"""Prometheus metrics of the service, exposed at ``GET /metrics`` (controllers/metrics.py).

Everything is counted in the API process, the only process that serves HTTP: ``llm-backend
serve`` runs one uvicorn process, and the engine workers of the local models are child
processes that only decode and report their figures to it (``stats`` events), so one
registry per app is complete. Run under several uvicorn worker processes (a gateway), set
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode): the counters and
histograms of every process are summed at each scrape; the scrape-time figures (engines,
upstreams, pool) are those of the process that answered. Replicas are scraped one by one.

Three sources, one registry:
- ``RequestObservation``, fed by ``RequestContext``'s one ``send`` wrapper: every HTTP
  request - by operationId (recorded by whichever of the fast lane or Connexion routed it,
  ``context.Record``), status and model - its duration, and for a streamed answer its time
  to first token; and each response of a Responses WebSocket, fed its events as they leave
  (``http/responses_socket.py``), counted as a ``createResponse`` request;
- the local engines' events (``LocalModel.on_event``): tokens of local answers and the
  first generated token; tokens of upstream answers are read from their ``usage``.
  ``count_tokens`` is the one place an answer's tokens are learnt: it counts them, and
  tells the rate limits (``on_tokens``) and the usage accounting (``usage``);
- collectors read at scrape time (``collectors.py``): queue depth, sequences in use,
  rejections, loads and restarts per local model, and each engine worker's own figures
  (from its ``stats`` events: sequences decoding, tokens/s, prompt-cache hits, KV use);
  requests, retries and errors per upstream; the database's connection pool.

Labels stay bounded: a model name a client made up is counted as ``other`` unless it was
answered successfully, and the key owner is the key (a static key's name or digest, a managed key's id),
never the key itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.types import Message

from ..auth import Principal
from ..backends.llama.backend import LlamaBackend
from ..backends.llama.local_model import LocalModel
from ..backends.registry import ModelRegistry
from ..errors import OpenAIError
from ..json.tail import TAIL, Kept, last_value
from ..json.text import LARGE_BODY, loads
from ..storage import Database
from ..storage.usage import (
    AUDIO_SPEECHES,
    AUDIO_TRANSCRIPTIONS,
    COMPLETIONS,
    EMBEDDINGS,
    MODERATIONS,
    Measured,
    UsageStore,
)
from . import context
from .collectors import DatabasePoolCollector, EngineCollector, PoolCollector, UpstreamCollector

# Seconds: from a cached 1-token answer (a few ms) to a long generation on a CPU.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
OTHER = "other"
# The usage operation (``usage-completions``, ``usage-embeddings``) an operation's tokens count in.
USAGE_FAMILIES = {
    "createEmbedding": EMBEDDINGS, "createModeration": MODERATIONS, "createSpeech": AUDIO_SPEECHES,
    "createTranscription": AUDIO_TRANSCRIPTIONS, "createTranslation": AUDIO_TRANSCRIPTIONS,
}
# The ``_created`` series double the exposition for nothing Prometheus needs.
disable_created_metrics()


class Metrics:
    """The app's metrics: one registry, the instruments, and the hooks into the engines."""

    def __init__(
        self, models: ModelRegistry, database: Database | None = None,
        token_listeners: list[Callable[[Principal, str, Measured], None]] | None = None, usage: UsageStore | None = None,
    ) -> None:
        """``token_listeners``: told every answer's usage (rate limits, spend, tracing);
        ``usage``: the usage accounting (storage/usage.py), when it is kept."""
        self.models = models
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "llm_backend_requests", "HTTP requests answered.", ["operation", "status", "model"], registry=self.registry
        )
        self.duration = Histogram(
            "llm_backend_request_duration_seconds",
            "Time from a request's arrival to the end of its answer (a stream's last byte).",
            ["operation", "model"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "llm_backend_time_to_first_token_seconds",
            "Streamed answers: time from the request's arrival to its first generated token "
            "(local models) or the upstream's first byte (upstream models).",
            ["operation", "model"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "llm_backend_requests_in_progress",
            "HTTP requests being answered.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.prompt_tokens = Counter(
            "llm_backend_prompt_tokens", "Prompt (input) tokens.", ["model", "owner"], registry=self.registry
        )
        self.completion_tokens = Counter(
            "llm_backend_completion_tokens", "Completion (output) tokens.", ["model", "owner"], registry=self.registry
        )
        # Read at scrape time, of this process only.
        self.collectors = [EngineCollector(models), UpstreamCollector(models), PoolCollector(models)]
        if database is not None:
            self.collectors.append(DatabasePoolCollector(database))
        self.exposed = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Several uvicorn worker processes: the instruments above live in files of that
            # directory, and a scrape of any process sums every process's.
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed)
        ProcessCollector(registry=self.exposed)
        PlatformCollector(registry=self.exposed)
        for collector in self.collectors:
            self.exposed.register(collector)
        self.token_listeners = list(token_listeners or ())
        self._children: dict[tuple, object] = {}
        self.usage = usage
        for model_id, model in local_models(models):
            model.on_event = self._engine_observer(model_id)

    def child(self, metric, *labels: str):
        """``metric.labels(*labels)``, remembered: prometheus-client builds and locks on
        every ``labels`` call (about 3 µs); the label sets are bounded (see the module)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def begin(self, record: context.Record) -> RequestObservation:
        """Start observing a request (``RequestContext`` calls it, and the observation's hooks)."""
        return RequestObservation(self, record)

    def response(self) -> Response:
        """The text exposition of every metric."""
        return Response(generate_latest(self.exposed), media_type=CONTENT_TYPE_LATEST)

    def count_tokens(self, model: str, usage: dict, family: str | None = None) -> None:
        """The one place an answer's usage is learnt (docs/ADMIN.md: the one usage-recording
        interface, for every family): its tokens (``prompt_tokens``/``input_tokens``...), or
        what is not tokens (``seconds`` of audio transcribed, ``characters`` spoken, hosted
        tool ``calls``, forwarded ``images``; a transcription's ``{"type": "duration", "seconds"}``), of ``family``
        (default: the operation's, ``USAGE_FAMILIES``). Counted here, told to each of
        ``token_listeners(principal, model, measured)`` (rate limits, spend) and recorded in
        the usage accounting, per key and project."""
        principal = context.caller()
        owner = principal.key
        record = context.record()
        if model == record.model and record.metered_model:
            model = record.metered_model  # an alias or persona counts as its model (project_limits.admit_model)
        measured = Measured(
            family or USAGE_FAMILIES.get(record.operation_id or "", COMPLETIONS),
            input_tokens=_count(usage, "prompt_tokens", "input_tokens"),
            cached_tokens=_cached(usage),
            output_tokens=_count(usage, "completion_tokens", "output_tokens"),
            seconds=_amount(usage.get("seconds")),
            characters=_count(usage, "characters"),
            calls=_count(usage, "calls", "images"),  # images: counted as the images family's calls
        )
        if measured.input_tokens:
            self.child(self.prompt_tokens, model, owner).inc(measured.input_tokens)
        if measured.output_tokens:
            self.child(self.completion_tokens, model, owner).inc(measured.output_tokens)
        for listener in self.token_listeners:
            listener(principal, model, measured)
        if self.usage is not None:
            requests = 0 if measured.family in record.usage_recorded else 1
            record.usage_recorded |= {measured.family}
            self.usage.record(
                measured.family, owner, model, measured.input_tokens, measured.output_tokens, measured.cached_tokens, requests,
                project=principal.owner, seconds=measured.seconds, characters=measured.characters, calls=measured.calls,
            )

    def _engine_observer(self, model_id: str) -> Callable[[dict], None]:
        def observe(event: dict) -> None:
            kind = event.get("event")
            if kind == "delta":
                record = context.record()
                if record.first_token_at is None and event.get("text"):
                    record.first_token_at = time.perf_counter()
            elif kind == "usage":
                record = context.record()
                record.tokens_counted = True
                self.count_tokens(record.model or model_id, event)

        return observe

    def model_label(self, model: str | None, status: int) -> str:
        if model is None:
            return ""
        if status < 400 or any(backend.claims(model) for backend in self.models.local):
            return model
        return OTHER

    def observe(self, record: context.Record, status: int, started: float, first_byte: float | None) -> None:
        """One answered request; ``first_byte`` is set for streamed answers only."""
        ended = time.perf_counter()
        operation = record.operation_id or "none"
        model = self.model_label(record.model, status)
        self.child(self.requests, operation, str(status), model).inc()
        self.child(self.duration, operation, model).observe(ended - started)
        if first_byte is not None and record.model is not None:
            first = record.first_token_at or first_byte
            self.child(self.ttft, operation, model).observe(first - started)


def _amount(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0.0


def _count(usage: dict, *names: str) -> int:
    """The first of ``names`` that ``usage`` holds as a count (0 if none)."""
    for name in names:
        value = usage.get(name)
        if value is not None:
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
    return 0


def _cached(usage: dict) -> int:
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    cached = usage.get("cached_tokens", details.get("cached_tokens") if isinstance(details, dict) else 0)
    return cached if isinstance(cached, int) and not isinstance(cached, bool) and cached > 0 else 0


def local_models(models: ModelRegistry) -> Iterator[tuple[str, LocalModel]]:
    """(id, LocalModel) of every local backend (``backends/llama``)."""
    for backend in models.local:
        if isinstance(backend, LlamaBackend):
            yield from backend.local_models.items()


def _usage_in_events(chunk: bytes) -> dict | None:
    """The ``usage`` of an SSE event in ``chunk`` (chat: the last chunk; Responses: the
    ``response.completed`` event), if a whole one is there; a long event's from its end."""
    for line in reversed(chunk.split(b"\n")):
        long = len(line) > LARGE_BODY
        if not line.startswith(b"data:") or b'"usage"' not in (line[-TAIL:] if long else line):
            continue
        if long:  # the event's own, else its Response's (a ``response.completed``)
            usage = _last_usage(line) or _last_usage(line, nested=True)
        else:
            try:
                event = loads(line[5:], unique_keys=False)  # bounded in depth: an upstream's event as it came
            except (ValueError, OpenAIError):
                continue
            usage = (event.get("usage") or (event.get("response") or {}).get("usage")) if isinstance(event, dict) else None
        if isinstance(usage, dict):
            return usage
    return None


def _last_usage(text: bytes, nested: bool = False) -> dict | None:
    usage = last_value(text, "usage", nested)
    return usage if isinstance(usage, dict) else None


class RequestObservation:
    """What the metrics learn of one request from its answer, as ``RequestContext`` sends it
    (one wrapper of ``send`` for the request id, the rate-limit headers and this): the
    status, when a stream's first byte left, and the ``usage`` of answers no engine counted
    (an upstream's, relayed unparsed; an embedding's) - read only from answers that name a
    model: a whole JSON answer, or the SSE event that carries ``usage`` (framed across the
    network's chunks), or the usage an upstream stream reported that its client did not ask to
    see (``Record.usage_withheld``: ``backends/upstream/stream_usage.py``). A long answer or
    event (past ``LARGE_BODY``) is read from its end (``json/tail.py``: where OpenAI writes
    ``usage``), and only its last ``TAIL`` bytes are kept: this runs on the event loop. One
    whose usage is elsewhere (no shape of OpenAI's) counts as none, as one without any
    (a dall-e-3 image) does, so nothing is logged for it."""

    __slots__ = (
        "body", "first_byte", "is_json", "metrics", "partial", "record", "started", "status", "streamed", "usage",
        "usage_chunk",
    )

    def __init__(self, metrics: Metrics, record: context.Record) -> None:
        self.metrics = metrics
        self.record = record
        self.started = time.perf_counter()
        self.status = 500
        self.streamed = self.is_json = False
        self.first_byte: float | None = None
        self.usage_chunk = b""
        self.partial = b""  # a stream's event not ended yet (split by the network)
        self.usage: dict | None = None
        self.body: Kept | None = None  # a whole JSON answer's, as it passes
        metrics.in_progress.inc()

    def sent(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            content_type = next((v for k, v in message.get("headers", ()) if k.lower() == b"content-type"), b"")
            self.streamed = content_type.startswith(b"text/event-stream")
            self.is_json = content_type.startswith(b"application/json")
        elif self.record.model is not None:
            chunk = message.get("body", b"")
            if self.streamed:
                if self.first_byte is None and chunk:
                    self.first_byte = time.perf_counter()
                # Framed first: an upstream may split an event (its usage) over two writes.
                events = self.partial + chunk if self.partial else chunk
                end = events.rfind(b"\n\n") + 2  # 1: none ended here
                events, self.partial = (events[:end], events[end:]) if end > 1 else (b"", events)
                if b'"usage"' in (events if len(events) <= LARGE_BODY else events[-TAIL:]):  # a long one: its end
                    self.usage_chunk = events
            elif self.is_json and self.status == 200 and not self.record.tokens_counted:
                if self.body is None:
                    self.body = Kept()  # a long answer's usage is read from its end
                self.body.extend(chunk)

    def event(self, event: dict) -> None:
        """An event of a stream sent as a WebSocket frame: the first is the stream's first
        byte; a final response's ``usage`` counts as an SSE stream's last chunk does."""
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        response = event.get("response")
        if isinstance(response, dict) and isinstance(response.get("usage"), dict):
            self.usage = response["usage"]

    def finished(self, status: int) -> None:
        """The request is over (``status``: as logged, ``middleware.final_status``)."""
        self.metrics.in_progress.dec()
        record = self.record
        if record.model is not None and not record.tokens_counted:
            self._count_answered_tokens(record.model)
        self.metrics.observe(record, status, self.started, self.first_byte)

    def _count_answered_tokens(self, model: str) -> None:
        """Tokens of an answer the engines did not count (an upstream's, an embedding's)."""
        usage = self.usage
        if self.body is not None:
            found = self.body.member("usage")
            usage = found if isinstance(found, dict) and found else usage
        elif self.usage_chunk or self.partial:
            # A stream's last event may lack its blank line when the stream ends.
            usage = _usage_in_events(self.partial) or _usage_in_events(self.usage_chunk)
        if usage is None:
            usage = self.record.usage_withheld  # a relayed stream's, not shown to its client
        if usage is not None:
            self.metrics.count_tokens(model, usage)
