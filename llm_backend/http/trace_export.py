"""The OpenTelemetry SDK side of ``tracing.py`` (``traced.py`` the request's): imported only when ``OTEL_*`` ask for it.

Each request ended is handed over (``pending``, a deque: an append on the request's path)
and built here, in a thread of its own: its SDK span with the ids its upstream was already
told (``_ChosenIds``), the engine's phases as child spans, the GenAI metrics. The SDK exports
both from its own threads too (``OTEL_BSP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``), OTLP over
HTTP/protobuf.

The thread builds as often as what it builds leaves (``build_seconds``: the spans' export
delay, ``OTEL_BSP_SCHEDULE_DELAY``, 5 s by default; the metrics' interval if shorter), and
at once when ``BATCH`` requests wait (a burst never overflows the span processor's queue,
and what waits stays bounded). Building more often only spread the same spans over more
wake-ups, each on cold caches: at a c=1 pace through a gateway (600 paired 1-token chats,
load average 4-5), the process's CPU per request over tracing off was +0.18 ms building
every 0.2 s, +0.12 ms every 1 s, +0.09 ms every 5 s.

Span and attributes on the GenAI semantic conventions (docs/OPERATIONS.md): ``chat {model}``
and its kin, ``gen_ai.operation.name``, ``gen_ai.request.model``/``response.model``,
``gen_ai.provider.name``, ``gen_ai.usage.input_tokens``/``output_tokens``, time to first token
(an attribute and an event); metrics ``gen_ai.client.token.usage``,
``gen_ai.server.request.duration``, ``gen_ai.server.time_to_first_token``.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from .metrics import DURATION_BUCKETS, TTFT_BUCKETS
from .traced import Traced, TracedObservation

log = logging.getLogger(__name__)

# The longest wait between builds, and the requests waiting that start one at once.
BUILD_SECONDS = 5.0
BATCH = 256
# Requests ended and not built yet, at most (a stalled builder drops the oldest).
PENDING = 100_000
# gen_ai.operation.name per operationId: the conventions' names where they have one.
OPERATIONS = {
    "createChatCompletion": "chat",
    "createResponse": "chat",
    "createRealtimeResponse": "chat",
    "messagesCreate": "chat",  # Anthropic's Messages: a chat in the conventions
    "createCompletion": "text_completion",
    "createEmbedding": "embeddings",
    "createTranscription": "transcription",
    "createTranslation": "translation",
    "createSpeech": "speech",
    "createModeration": "moderation",
}
# The conventions' bucket boundaries for gen_ai.client.token.usage.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# The SDK's default sampler: decided here from the parent's flag alone.
DEFAULT_SAMPLERS = ("", "parentbased_always_on")


class _ChosenIds(IdGenerator):
    """The ids a request's span was given when it arrived (its upstream was sent them then),
    handed to the SDK as it builds the span; random ones for everything else."""

    def __init__(self) -> None:
        self.random = RandomIdGenerator()
        self.trace_id: int | None = None
        self.span_id: int | None = None

    def generate_trace_id(self) -> int:
        chosen, self.trace_id = self.trace_id, None
        return chosen or self.random.generate_trace_id()

    def generate_span_id(self) -> int:
        chosen, self.span_id = self.span_id, None
        return chosen or self.random.generate_span_id()


class Tracing:
    """The providers built from ``OTEL_*`` and the thread that turns ended requests into
    spans and measurements."""

    def __init__(self, registry, spans: bool, metrics: bool, environ: Mapping[str, str] = os.environ) -> None:
        self.registry = registry
        self.spans, self.metrics = spans, metrics
        named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        resource = Resource.create({} if named else {"service.name": "llm-backend"})
        self.providers: list = []
        self.pending: collections.deque[TracedObservation] = collections.deque(maxlen=PENDING)
        self.default_sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() in DEFAULT_SAMPLERS
        if spans:
            self.ids = _ChosenIds()
            tracer_provider = TracerProvider(resource=resource, id_generator=self.ids)
            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            self.providers.append(tracer_provider)
            self.sampler = tracer_provider.sampler
            self.tracer = tracer_provider.get_tracer("llm_backend")
        if metrics:
            # Exemplars (the SDK's default looks up the current span at each measurement)
            # only when OTEL_METRICS_EXEMPLAR_FILTER asks for them.
            exemplars = None if "OTEL_METRICS_EXEMPLAR_FILTER" in environ else AlwaysOffExemplarFilter()
            reader = PeriodicExportingMetricReader(OTLPMetricExporter())
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader], exemplar_filter=exemplars)
            self.providers.append(meter_provider)
            meter = meter_provider.get_meter("llm_backend")
            self.tokens = meter.create_histogram(
                "gen_ai.client.token.usage", "{token}", "Tokens used per model call, input and output.",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )
            self.duration = meter.create_histogram(
                "gen_ai.server.request.duration", "s", "Time from a model call's arrival to the end of its answer.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            self.ttft = meter.create_histogram(
                "gen_ai.server.time_to_first_token", "s", "Streamed answers: time to the first token.",
                explicit_bucket_boundaries_advisory=TTFT_BUCKETS,
            )
        self.build_seconds = build_seconds(environ, spans, metrics)
        self._stopping, self._wake = threading.Event(), threading.Event()
        self._builder = threading.Thread(target=self._build_every, name="otel-spans", daemon=True)
        self._builder.start()

    def traced(self, observer) -> Traced:
        return Traced(self, observer)

    def hand_over(self, request: TracedObservation) -> None:
        """A request ended, to be built here (called on the request's path: an append)."""
        self.pending.append(request)
        if len(self.pending) >= BATCH:
            self._wake.set()

    def sampled(self, parent: tuple | None, trace_id: int) -> bool:
        """The sampler's decision for a request's span, asked when it arrives (its upstream
        is told it); the SDK's own asking, when the span is built, comes to the same."""
        if self.default_sampler:
            return parent is None or bool(parent[2] & 1)
        return self.sampler.should_sample(_context(parent), trace_id, "request", SpanKind.SERVER).decision.is_sampled()

    def provider_name(self, model: str) -> str:
        """gen_ai.provider.name: ``llama.cpp`` for a local model, else the API its upstream
        speaks: ``anthropic`` (``api: anthropic``) or ``openai`` (an OpenAI-compatible one)."""
        if any(backend.claims(model) for backend in self.registry.local):
            return "llama.cpp"
        # An upstream's ``api`` is its provider's name in the conventions; a pool's is OpenAI's.
        return getattr(self.registry.backend_for_or_none(model), "api", "openai")

    def _build_every(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.build_seconds)
            self._wake.clear()
            self.build_pending()

    def build_pending(self) -> None:
        while self.pending:
            observation = self.pending.popleft()
            try:
                self._build(observation)
            except Exception:  # one request's span must not stop the others'
                log.exception("a request's span could not be built")

    def shutdown(self) -> None:
        """Build and export what is pending, and stop (blocking: the exporters' last requests)."""
        self._stopping.set()
        self._wake.set()
        self._builder.join()
        self.build_pending()
        for provider in self.providers:
            try:
                provider.shutdown()
            except Exception:  # an unreachable collector must not fail the shutdown
                log.warning("OpenTelemetry shutdown failed", exc_info=True)

    def _build(self, request: TracedObservation) -> None:
        record, status = request.record, request.status
        model = record.model
        operation = OPERATIONS.get(record.operation_id or "", record.operation_id) if model is not None else None
        attributes: dict[str, str | int | float] = {}
        if model is not None:
            attributes = {
                "gen_ai.operation.name": operation or "unknown",
                "gen_ai.request.model": model,
                "gen_ai.provider.name": self.provider_name(model),
            }
            if status < 400:
                attributes["gen_ai.response.model"] = model
            if self.metrics:
                self._measure(request, attributes)
        if not request.sampled:
            return
        name = f"{operation} {model}" if model is not None else record.operation_id or request.method
        if record.operation_id:
            attributes["llm_backend.operation_id"] = record.operation_id
        attributes["http.response.status_code"] = status
        if request.input_tokens or request.output_tokens:
            attributes["gen_ai.usage.input_tokens"] = request.input_tokens
            attributes["gen_ai.usage.output_tokens"] = request.output_tokens
        if request.first is not None and model is not None:
            attributes["gen_ai.server.time_to_first_token"] = request.first - request.since
        if status >= 400 and status != 499:  # 499: the client left (not the service's failure)
            attributes["error.type"] = str(status)
        self.ids.trace_id, self.ids.span_id = request.trace_id, request.span_id
        span = self.tracer.start_span(name, _context(request.parent), SpanKind.SERVER, attributes, start_time=request.epoch)
        self.ids.trace_id = self.ids.span_id = None  # taken, or left by a span the SDK did not record
        if request.first is not None and model is not None:
            span.add_event("gen_ai.first_token", timestamp=request.at(request.first))
        if status >= 500:  # a server span's 4xx is the client's mistake (HTTP conventions)
            span.set_status(Status(StatusCode.ERROR))
        if request.phases:
            self._children(request, span, model)
        span.end(request.at(request.ended))

    def _children(self, request: TracedObservation, span, model: str | None) -> None:
        """The engine's phases as child spans: ``queue {model}`` from joining the line to a
        worker's sequence, ``engine {model}`` from there to its release."""
        parent = set_span_in_context(span)
        opened: dict[str, float] = {}
        for name, at in request.phases:
            for phase in ("queue", "engine"):
                if phase in opened and name != phase:
                    child = self.tracer.start_span(f"{phase} {model}", parent, start_time=request.at(opened.pop(phase)))
                    child.end(request.at(at))
            if name in ("queue", "engine"):
                opened[name] = at

    def _measure(self, request: TracedObservation, attributes: dict) -> None:
        if request.status >= 400:
            attributes = {**attributes, "error.type": str(request.status)}
        self.duration.record(request.ended - request.since, attributes)
        if request.first is not None:
            self.ttft.record(request.first - request.since, attributes)
        if request.input_tokens:
            self.tokens.record(request.input_tokens, {**attributes, "gen_ai.token.type": "input"})
        if request.output_tokens:
            self.tokens.record(request.output_tokens, {**attributes, "gen_ai.token.type": "output"})


def build_seconds(environ: Mapping[str, str], spans: bool, metrics: bool) -> float:
    """How often the ended requests are built: as often as the spans leave
    (``OTEL_BSP_SCHEDULE_DELAY``) or the metrics (``OTEL_METRIC_EXPORT_INTERVAL``), in
    milliseconds as the SDK reads them, at most every ``BUILD_SECONDS``."""
    seconds = BUILD_SECONDS
    for wanted, name in ((spans, "OTEL_BSP_SCHEDULE_DELAY"), (metrics, "OTEL_METRIC_EXPORT_INTERVAL")):
        try:
            milliseconds = float(environ.get(name, "")) if wanted else 0
        except ValueError:  # the SDK's default then, never below ours
            milliseconds = 0
        if milliseconds > 0:
            seconds = min(seconds, milliseconds / 1000)
    return seconds


def _context(parent: tuple | None):
    """The client's span as the SDK's parent context (None: a root span)."""
    if parent is None:
        return None
    trace_id, span_id, flags, tracestate = parent
    state = TraceState.from_header([tracestate.decode("latin-1")]) if tracestate else None
    return set_span_in_context(NonRecordingSpan(SpanContext(trace_id, span_id, True, TraceFlags(flags), state)))
