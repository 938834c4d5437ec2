"""A real OTLP/HTTP receiver on loopback, as its own process: what a collector is to the
service's tracing (``http/tracing.py``), reduced to what the tests read.

It accepts ``POST /v1/traces`` and ``POST /v1/metrics`` (protobuf, gzip or not), decodes them
with ``opentelemetry-proto`` (the official message definitions) and answers OTLP's empty
success; ``GET /spans`` and ``GET /metrics`` give back what it decoded as JSON (ids in hex,
attributes as plain values). Run as ``python tests/support/otlp_receiver.py``: it prints its
port on the first line of stdout. ``OtlpReceiver`` runs it for a test.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind is None or kind == "kvlist_value":
        return None
    return getattr(any_value, kind)


def _attributes(pairs) -> dict:
    return {pair.key: _value(pair.value) for pair in pairs}


def serve() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans: list[dict] = []
    metrics: list[dict] = []
    lock = threading.Lock()

    def traces(body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with lock:
                        spans.append({
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "attributes": _attributes(span.attributes),
                            "events": [event.name for event in span.events],
                            "status": span.status.code,
                            "resource": resource,
                        })

    def metric_points(body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    points = getattr(metric, kind).data_points
                    with lock:
                        metrics.extend(
                            {"name": metric.name, "unit": metric.unit, "attributes": _attributes(point.attributes),
                             "count": getattr(point, "count", None), "sum": getattr(point, "sum", None)}
                            for point in points
                        )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            handler = {"/v1/traces": traces, "/v1/metrics": metric_points}.get(self.path)
            if handler is None or self.headers.get("content-type") != "application/x-protobuf":
                self.send_response(404)
                self.end_headers()
                return
            handler(body)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")  # an empty Export*ServiceResponse: all accepted
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                found = {"/spans": spans, "/metrics": metrics}.get(self.path)
                body = json.dumps(found).encode() if found is not None else b""
            self.send_response(200 if found is not None else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


class OtlpReceiver:
    """The receiver process for a test: ``endpoint`` for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""

    def __enter__(self) -> "OtlpReceiver":
        self.process = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())
        self.endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)

    def spans(self, trace_id: str | None = None) -> list[dict]:
        spans = httpx.get(self.endpoint + "/spans").json()
        return [span for span in spans if trace_id is None or span["trace_id"] == trace_id]

    def metrics(self) -> list[dict]:
        return httpx.get(self.endpoint + "/metrics").json()

    def wait_for_spans(self, trace_id: str, names: set[str], within: float = 15) -> list[dict]:
        """The spans of ``trace_id`` once each of ``names`` has come (the exporters batch)."""
        deadline = time.monotonic() + within
        while True:
            spans = self.spans(trace_id)
            if names <= {span["name"] for span in spans} or time.monotonic() > deadline:
                return spans
            time.sleep(0.1)


if __name__ == "__main__":
    serve()
