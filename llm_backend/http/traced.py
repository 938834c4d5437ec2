"""A request's span on the request's path (http/tracing.py): its ids and the client's W3C
``traceparent`` read when it arrives, its upstream told, and what it learnt (times, engine
phases, tokens, status) handed to ``trace_export.py``'s thread when it ends. No OpenTelemetry
here: the SDK side builds the span from a ``TracedObservation``, and ``Traced`` wraps the app's
observer (the metrics) to make one per request.
"""

from __future__ import annotations

import random
import re
import time
from contextvars import ContextVar

from starlette.types import Message

from ..backends.base import engine_phase, trace_headers
from . import context

# W3C Trace Context's traceparent: version, trace id, parent id, flags (version 00: no more).
TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


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
        self.first: float | None = None  # when its first token (or byte) went out
        self.ended, self.status = 0.0, 0  # set by ``finished``, before it is handed over
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
        self.inner = None  # the metrics' observation (an answer's body, perhaps) not kept while it waits
        if self.sampled or (self.tracing.metrics and self.record.model is not None):
            self.tracing.hand_over(self)  # built in trace_export's thread

    def at(self, moment: float) -> int:
        """A ``perf_counter`` reading as Unix nanoseconds (spans take wall-clock times)."""
        return self.epoch + int((moment - self.since) * 1e9)
