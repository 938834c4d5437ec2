"""What tracing adds to one request, in-process: CPU per request of the tracing observer
(``http/tracing.py``: the span started in the client's trace, the upstream's ``traceparent``,
the token listener, the span ended with its GenAI attributes, the GenAI metrics recorded),
with the SDK exporting to a real OTLP/HTTP receiver process (tests/support/otlp_receiver.py)
from its own thread.

bench/proxy.py --traced measures the same through a gateway, end to end; on a shared machine
its latencies move by more than the cost, and its server CPU per request is counted in 10 ms
ticks. This counts the request thread's CPU (``thread_time``) and the whole process's
(exporter thread included) over many requests.

    python bench/tracing.py [--requests 3000] [--no-metrics] [--interval SECONDS]

``--interval`` spaces the requests (a c=1 client's pace): the process's CPU then includes
whatever the SDK's threads spend while requests are few.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_backend import off_loop  # noqa: E402
from llm_backend.http import context, tracing  # noqa: E402
from llm_backend.storage.usage import COMPLETIONS, Measured  # noqa: E402
from tests.support.otlp_receiver import OtlpReceiver  # noqa: E402

SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/v1/chat/completions",
    "headers": [
        (b"content-type", b"application/json"),
        (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ],
}


class NoModels:
    local: list = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between requests")
    parser.add_argument("--no-metrics", action="store_true", help="spans only (OTEL_METRICS_EXPORTER=none)")
    args = parser.parse_args()
    with OtlpReceiver() as receiver:
        environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "bench"}
        if args.no_metrics:
            environ["OTEL_METRICS_EXPORTER"] = "none"
        os.environ.update(environ)  # the SDK's exporters read os.environ themselves
        traced = tracing.start(NoModels(), environ)
        observer = traced.traced(None)

        def request() -> None:
            record = context.enter(SCOPE, None)
            record.operation_id, record.model = "createChatCompletion", "smollm2"
            observation = observer.begin(record)
            tracing.spend(None, "smollm2", Measured(COMPLETIONS, input_tokens=12, output_tokens=1))
            observation.finished(200)

        for _ in range(500):
            request()
        off_loop.settle()  # the start-up's objects frozen out of the collector's sight, as the server does once ready
        time.sleep(1)  # the warm-up's spans exported
        process, thread = time.process_time(), time.thread_time()
        for n in range(args.requests):
            request()
            if args.interval:
                time.sleep(args.interval)
            elif n % 1000 == 999:
                time.sleep(0.2)  # let the exporter keep up (its queue holds 2048 spans)
        thread = time.thread_time() - thread
        traced.shutdown()  # what is still pending built and exported: counted too
        process = time.process_time() - process
        spans = len(receiver.spans())
    print(f"{args.requests} requests, spans received {spans}: CPU per request {thread / args.requests * 1e6:.1f} µs "
          f"on the request's thread, {process / args.requests * 1e6:.1f} µs in all (the exporter's thread included)")


if __name__ == "__main__":
    main()
