"""OpenTelemetry traces and GenAI metrics of the requests served, off unless asked for.

On when the standard ``OTEL_*`` settings name an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``/``..._METRICS_ENDPOINT``) or ask for ``otlp``
(``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER``); off with ``OTEL_SDK_DISABLED=true``
or an exporter ``none``. The rest is the SDK's own reading of ``OTEL_*`` (service name,
resource, sampler, batch sizes, headers, timeouts): OTLP over HTTP/protobuf, the official
``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-http`` (the ``otel`` extra).

Free when off: this module imports no OpenTelemetry; ``start`` imports the SDK side
(``trace_export.py``) only once the settings ask for it, and then the app's observer is
wrapped (``traced.py``'s ``Traced``); off, the edge runs exactly as before. This module is
the switch the app reads (``start``, and ``spend`` its token listener); ``traced.py`` the
request's side, below both it and ``trace_export.py``.

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
from collections.abc import Mapping

from .traced import spend  # the app's token listener, beside ``start``

__all__ = ["spend", "start", "wanted"]


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
