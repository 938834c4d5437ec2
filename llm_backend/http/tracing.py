"""OpenTelemetry traces and GenAI metrics of the requests served, off unless asked for.

On when the standard ``OTEL_*`` settings name an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``/``..._METRICS_ENDPOINT``) or ask for ``otlp``
(``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER``); off with ``OTEL_SDK_DISABLED=true``
or an exporter ``none``. The rest is the SDK's own reading of ``OTEL_*`` (service name,
resource, sampler, batch sizes, headers, timeouts): OTLP over HTTP/protobuf, the official
``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-http`` (the ``otel`` extra).

Free when off: this module imports no OpenTelemetry; ``start`` imports the SDK side
(``trace_export.py``) only once the settings ask for it, and then the app's observer is
wrapped (``Traced``); off, the edge runs exactly as before.

One span per request, hooked where the edge sees every answer (the ``Observer`` of
``http/middleware.Exchange``: HTTP requests, each response of a Responses WebSocket, each
response or transcription of a Realtime session, batch lines): a child of the client's W3C
``traceparent``, and the parent of the upstream request's (``backends.base.trace_headers``,
sent by ``backends/upstream/http_client.py``). Cheap on the request's path: its ids and W3C
header are made here when it arrives (the sampler asked then), and what it learnt is handed
over when it ends; the SDK's span and metrics are built from that in ``trace_export``'s
thread. Built on the request's path, a span and its metrics cost ~0.45 ms of CPU per
request on a loaded machine at a c=1 pace (``bench/tracing.py``); handed over, a few µs.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar

from starlette.types import Message

from ..backends.base import engine_phase, trace_headers
from . import context

# W3C Trace Context's traceparent: version, trace id, parent id, flags (version 00: no more).
TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


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


def start(registry, environ: Mapping[str, str] = os.environ):
    """The app's tracing (``trace_export.Tracing``), or None when ``OTEL_*`` do not ask for it."""
    if not wanted(environ):
        return None
    try:
        from .trace_export import Tracing
    except ImportError:
        import logging

        logging.getLogger(__name__).warning(
            "OTEL_* settings ask for OpenTelemetry, but it is not installed (pip install 'llm-backend[otel]')"
        )
        return None
    return Tracing(registry, _exporter(environ, "traces"), _exporter(environ, "metrics"), environ)


def parent_of(headers) -> tuple[int, int, int, bytes | None] | None:
    """The client's span in W3C ``traceparent``/``tracestate``: (trace id, span id, flags,
    tracestate), or None when it sent none that is valid (then the request starts a trace)."""
    traceparent = tracestate = None
    for name, value in headers:
        if name == b"traceparent":
            traceparent = value
        elif name == b"tracestate":
            tracestate = value
    match = TRACEPARENT.fullmatch(traceparent.strip()) if traceparent is not None else None
    if match is None or match[1] == b"ff" or (match[1] == b"00" and match[5]):
        return None
    trace_id, span_id = int(match[2], 16), int(match[3], 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(match[4], 16), tracestate


_current: ContextVar[TracedObservation] = ContextVar("traced_observation")


def spend(principal, model: str, measured) -> None:
    """A listener of ``Metrics.count_tokens``: the answer's tokens, for its span."""
    observation = _current.get(None)
    if observation is not None:
        observation.input_tokens += measured.input_tokens
        observation.output_tokens += measured.output_tokens


class Traced:
    """The app's observer (the metrics, or None) with a span per request beside it."""

    def __init__(self, tracing, observer) -> None:
        self.tracing = tracing
        self.observer = observer

    def begin(self, record: context.Record) -> TracedObservation:
        inner = self.observer.begin(record) if self.observer is not None else None
        return TracedObservation(self.tracing, record, inner)


class TracedObservation:
    """One request as its span will show it: its ids and its client's span, chosen when it
    arrives; its times, engine phases, tokens and status, handed to ``tracing`` at its end."""

    __slots__ = (
        "ended", "epoch", "first", "inner", "input_tokens", "method", "output_tokens", "parent", "phases", "record",
        "sampled", "since", "span_id", "status", "trace_id", "tracing",
    )

    def __init__(self, tracing, record: context.Record, inner) -> None:
        self.tracing = tracing
        self.record = record
        self.inner = inner
        self.since, self.epoch = time.perf_counter(), time.time_ns()
        self.input_tokens = self.output_tokens = 0
        self.phases: list[tuple[str, float]] = []
        self.first = self.ended = self.status = None
        _current.set(self)
        scope = context.scope()
        self.method = scope.get("method", "WEBSOCKET")
        self.parent = parent = parent_of(scope["headers"])
        self.trace_id = parent[0] if parent is not None else random.getrandbits(128) or 1
        self.span_id = random.getrandbits(64) or 1
        self.sampled = tracing.spans and tracing.sampled(parent, self.trace_id)
        if not tracing.spans:
            return
        # The upstream's request is a child of this span: same trace, this span its parent.
        flags = (1 if self.sampled else 0) | (parent[2] & 2 if parent is not None else 0)
        sent = [(b"traceparent", b"00-%032x-%016x-%02x" % (self.trace_id, self.span_id, flags))]
        if parent is not None and parent[3]:
            sent.append((b"tracestate", parent[3]))
        trace_headers.set(sent)
        if self.sampled:
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
        self.ended, self.status = time.perf_counter(), status
        first_byte = getattr(self.inner, "first_byte", None)
        if first_byte is not None:
            self.first = self.record.first_token_at or first_byte
        if self.sampled or (self.tracing.metrics and self.record.model is not None):
            self.tracing.pending.append(self)  # built in trace_export's thread

    def at(self, moment: float) -> int:
        """A ``perf_counter`` reading as Unix nanoseconds (spans take wall-clock times)."""
        return self.epoch + int((moment - self.since) * 1e9)
