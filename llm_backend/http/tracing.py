"""OpenTelemetry traces and GenAI metrics of the requests served, off unless asked for.

On when the standard ``OTEL_*`` settings name an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``/``..._METRICS_ENDPOINT``) or ask for ``otlp``
(``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER``); off with ``OTEL_SDK_DISABLED=true``
or an exporter ``none``. The rest is the SDK's own reading of ``OTEL_*`` (service name,
resource, sampler, batch sizes, headers, timeouts): OTLP over HTTP/protobuf, the official
``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-http`` (the ``otel`` extra).

Free when off: nothing here imports OpenTelemetry until ``start`` finds it asked for, and
then the app's observer is wrapped (``Traced``); off, the edge runs exactly as before.

One span per request, hooked where the edge sees every answer (the ``Observer`` of
``http/middleware.Exchange``: HTTP requests, each response of a Responses WebSocket, each
response or transcription of a Realtime session, batch lines): a child of the client's W3C
``traceparent``, and the parent of the upstream request's (``backends.base.trace_headers``,
sent by ``backends/upstream/client.py``). A model call's span follows the GenAI semantic
conventions (``chat {model}``, ``gen_ai.*``), with the engine's queue wait and its work as
child spans (``backends.base.engine_phase``, told by ``backends/llama/local_model.py``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from contextvars import ContextVar

from starlette.types import Message

from ..backends.base import engine_phase, trace_headers
from . import context
from .metrics import DURATION_BUCKETS, TTFT_BUCKETS

log = logging.getLogger(__name__)

# gen_ai.operation.name per operationId: the conventions' names where they have one.
OPERATIONS = {
    "createChatCompletion": "chat",
    "createResponse": "chat",
    "createRealtimeResponse": "chat",
    "createCompletion": "text_completion",
    "createEmbedding": "embeddings",
    "createTranscription": "transcription",
    "createTranslation": "translation",
    "createSpeech": "speech",
    "createModeration": "moderation",
}
# The conventions' bucket boundaries for gen_ai.client.token.usage.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
TRACE_HEADERS = (b"traceparent", b"tracestate")


def _exporter(environ: Mapping[str, str], signal: str) -> bool:
    """Whether ``OTEL_*`` ask for OTLP export of ``signal`` (``traces``, ``metrics``)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip().lower()
    if exporter:
        return exporter == "otlp"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"))


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    return _exporter(environ, "traces") or _exporter(environ, "metrics")


class Tracing:
    """The tracer and the GenAI instruments, built from ``OTEL_*``; ``traced(observer)``
    wraps the app's observer; ``spend`` is told every answer's tokens (a listener of
    ``Metrics.count_tokens``)."""

    def __init__(self, registry, environ: Mapping[str, str] = os.environ) -> None:
        # Imported here, and only here: off, no OpenTelemetry module is loaded at all.
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.registry = registry
        self.kind, self.status, self.error = SpanKind.SERVER, Status, StatusCode.ERROR
        self.propagator = TraceContextTextMapPropagator()
        resource = Resource.create({"service.name": "llm-backend"} if "OTEL_SERVICE_NAME" not in environ else {})
        self.providers: list = []
        self.tracer = self.meter = None
        if _exporter(environ, "traces"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace import set_span_in_context

            provider = TracerProvider(resource=resource)
            # Exported from the processor's thread, in batches (OTEL_BSP_*): not on the loop.
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            self.providers.append(provider)
            self.tracer = provider.get_tracer("llm_backend")
            self.in_context = set_span_in_context
        if _exporter(environ, "metrics"):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter

            # Exemplars (the SDK's default: each measurement looks up the current span, 3 per
            # request) only when OTEL_METRICS_EXEMPLAR_FILTER asks for them.
            exemplars = None if "OTEL_METRICS_EXEMPLAR_FILTER" in environ else AlwaysOffExemplarFilter()
            provider = MeterProvider(
                resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())], exemplar_filter=exemplars
            )
            self.providers.append(provider)
            meter = provider.get_meter("llm_backend")
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
            self.meter = meter

    def traced(self, observer):
        return Traced(self, observer)

    def spend(self, principal, model: str, measured) -> None:
        observation = _current.get(None)
        if observation is not None:
            observation.input_tokens += measured.input_tokens
            observation.output_tokens += measured.output_tokens

    def provider_name(self, model: str) -> str:
        """gen_ai.provider.name: ``llama.cpp`` for a local model, else ``openai`` (an
        OpenAI-compatible upstream)."""
        return "llama.cpp" if any(backend.claims(model) for backend in self.registry.local) else "openai"

    def shutdown(self) -> None:
        """Export what is pending and stop (blocking: the exporters' last requests)."""
        for provider in self.providers:
            try:
                provider.shutdown()
            except Exception:  # an unreachable collector must not fail the shutdown
                log.warning("OpenTelemetry shutdown failed", exc_info=True)


def start(registry, environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """The app's tracing, or None when ``OTEL_*`` do not ask for it."""
    if not wanted(environ):
        return None
    try:
        return Tracing(registry, environ)
    except ImportError:
        log.warning("OTEL_* settings ask for OpenTelemetry, but it is not installed (pip install 'llm-backend[otel]')")
        return None


_current: ContextVar[TracedObservation] = ContextVar("traced_observation")


class Traced:
    """The app's observer (the metrics, or None) with a span per request beside it."""

    def __init__(self, tracing: Tracing, observer) -> None:
        self.tracing = tracing
        self.observer = observer

    def begin(self, record: context.Record) -> TracedObservation:
        inner = self.observer.begin(record) if self.observer is not None else None
        return TracedObservation(self.tracing, record, inner)


def _epoch_ns(since: float, epoch: int, at: float) -> int:
    """A ``perf_counter`` reading ``at`` as Unix nanoseconds (spans take wall-clock times)."""
    return epoch + int((at - since) * 1e9)


class TracedObservation:
    """One request's span: started with the request, in its client's trace; named and
    given its attributes when it ends, once its operation, model and tokens are known."""

    __slots__ = ("epoch", "inner", "input_tokens", "output_tokens", "phases", "record", "since", "span", "tracing")

    def __init__(self, tracing: Tracing, record: context.Record, inner) -> None:
        self.tracing = tracing
        self.record = record
        self.inner = inner
        self.since, self.epoch = time.perf_counter(), time.time_ns()
        self.input_tokens = self.output_tokens = 0
        self.phases: list[tuple[str, float]] = []
        self.span = None
        _current.set(self)
        if tracing.tracer is None:
            return
        scope = context.scope()
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"] if name in TRACE_HEADERS}
        parent = tracing.propagator.extract(carrier) if carrier else None
        self.span = tracing.tracer.start_span(scope.get("method", "WEBSOCKET"), parent, tracing.kind, start_time=self.epoch)
        # The upstream's request is a child of this span: same trace, this span its parent
        # (W3C's format written here: the propagator's inject costs 4x as much).
        span = self.span.get_span_context()
        sent = [(b"traceparent", b"00-%032x-%016x-%02x" % (span.trace_id, span.span_id, span.trace_flags))]
        if span.trace_state:
            sent.append((b"tracestate", span.trace_state.to_header().encode("latin-1")))
        trace_headers.set(sent)
        engine_phase.set(self._phase)

    def _phase(self, name: str) -> None:
        self.phases.append((name, time.perf_counter()))

    def sent(self, message: Message) -> None:
        if self.inner is not None:
            self.inner.sent(message)

    def event(self, event: dict) -> None:
        if self.inner is not None:
            self.inner.event(event)

    def finished(self, status: int) -> None:
        if self.inner is not None:
            self.inner.finished(status)  # first: it counts the answer's tokens (``spend``)
        record, tracing = self.record, self.tracing
        ended = time.perf_counter()
        first_byte = getattr(self.inner, "first_byte", None)
        first = (record.first_token_at or first_byte) if first_byte is not None else None
        model = record.model
        operation = OPERATIONS.get(record.operation_id or "", record.operation_id) if model is not None else None
        attributes = {}
        if model is not None:
            attributes = {
                "gen_ai.operation.name": operation or "unknown",
                "gen_ai.request.model": model,
                "gen_ai.provider.name": tracing.provider_name(model),
            }
            if status < 400:
                attributes["gen_ai.response.model"] = model
        if tracing.meter is not None and model is not None:
            self._measure(attributes, status, ended, first)
        span = self.span
        if span is None:
            return
        span.update_name(f"{operation} {model}" if model is not None else record.operation_id or span.name)
        if record.operation_id:
            attributes["llm_backend.operation_id"] = record.operation_id
        attributes["http.response.status_code"] = status
        if self.input_tokens or self.output_tokens:
            attributes["gen_ai.usage.input_tokens"] = self.input_tokens
            attributes["gen_ai.usage.output_tokens"] = self.output_tokens
        if first is not None and model is not None:
            attributes["gen_ai.server.time_to_first_token"] = first - self.since
            span.add_event("gen_ai.first_token", timestamp=_epoch_ns(self.since, self.epoch, first))
        span.set_attributes(attributes)
        if status >= 500 or (status >= 400 and status != 499):
            span.set_attribute("error.type", str(status))
            span.set_status(tracing.status(tracing.error))
        if self.phases:
            self._children(model)
        span.end(_epoch_ns(self.since, self.epoch, ended))

    def _children(self, model: str | None) -> None:
        """The engine's phases as child spans: ``queue {model}`` from joining the line to a
        worker's sequence, ``engine {model}`` from there to its release."""
        parent = self.tracing.in_context(self.span)
        opened: dict[str, float] = {}
        for name, at in self.phases:
            for phase in ("queue", "engine"):
                if phase in opened and name != phase:
                    child = self.tracing.tracer.start_span(
                        f"{phase} {model}", parent, start_time=_epoch_ns(self.since, self.epoch, opened.pop(phase))
                    )
                    child.end(_epoch_ns(self.since, self.epoch, at))
            if name in ("queue", "engine"):
                opened[name] = at

    def _measure(self, attributes: dict, status: int, ended: float, first: float | None) -> None:
        tracing = self.tracing
        if status >= 400:
            attributes = {**attributes, "error.type": str(status)}
        tracing.duration.record(ended - self.since, attributes)
        if first is not None:
            tracing.ttft.record(first - self.since, attributes)
        if self.input_tokens:
            tracing.tokens.record(self.input_tokens, {**attributes, "gen_ai.token.type": "input"})
        if self.output_tokens:
            tracing.tokens.record(self.output_tokens, {**attributes, "gen_ai.token.type": "output"})
