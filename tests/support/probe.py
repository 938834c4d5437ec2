"""A ``/health`` probe beside a hostile request: how long the service's event loop kept a
request that costs nothing waiting while it worked (issue #39: work sized by the input on the
loop froze every tenant)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx


@dataclass
class Probe:
    waits: list[float] = field(default_factory=list)

    @property
    def longest(self) -> float:
        return max(self.waits, default=0.0)


@contextmanager
def health_probe(base_url: str, interval: float = 0.05) -> Iterator[Probe]:
    """Ask ``/health`` every ``interval`` seconds during the block; each answer's wait kept
    (one still unanswered at the end counts to then)."""
    probe = Probe()
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    client.get(base_url + "/health")
                except httpx.HTTPError:
                    pass
                probe.waits.append(time.monotonic() - started)
                stop.wait(interval)

    thread = threading.Thread(target=run, name="health-probe", daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        stop.set()
        thread.join(130)
