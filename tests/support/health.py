"""The wait of a ``/health`` probe while something else runs: how long the service's event
loop was held (issue #39: no request may hold it past 250 ms)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

BUDGET = 0.25  # seconds a /health probe may wait, whatever else the service is doing


@contextmanager
def probed(base_url: str, interval: float = 0.02) -> Iterator[list[float]]:
    """Probe ``/health`` every ``interval`` seconds during the block; yields the waits (in
    seconds, filled in as they come)."""
    waits: list[float] = []
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/health").raise_for_status()
                waits.append(time.perf_counter() - started)
                stop.wait(interval)

    thread = threading.Thread(target=run, name="health-probe", daemon=True)
    thread.start()
    try:
        yield waits
    finally:
        stop.set()
        thread.join()
