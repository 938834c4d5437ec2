"""A ``/health`` probe beside a hostile request: how long the service's event loop kept a
request that costs nothing waiting while it worked (issue #39: work sized by the input on the
loop froze every tenant)."""

from __future__ import annotations

import multiprocessing
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


def _probing(base_url: str, interval: float, stop, waits: list[float], ready=None) -> None:
    """Ask ``/health`` every ``interval`` seconds until ``stop``; each wait kept in ``waits``
    (with ``ready``: from the second on, the first having opened the connection)."""
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                client.get(base_url + "/health")
            except httpx.HTTPError:
                pass
            if ready is None or ready.is_set():
                waits.append(time.monotonic() - started)
            if ready is not None:
                ready.set()
            stop.wait(interval)


@contextmanager
def health_probe(base_url: str, interval: float = 0.05) -> Iterator[Probe]:
    """Ask ``/health`` every ``interval`` seconds during the block; each answer's wait kept
    (one still unanswered at the end counts to then)."""
    probe = Probe()
    stop = threading.Event()
    thread = threading.Thread(target=_probing, args=(base_url, interval, stop, probe.waits), name="health-probe", daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        stop.set()
        thread.join(130)


def _probe_apart(base_url: str, interval: float, ready, stop, results) -> None:
    waits: list[float] = []
    _probing(base_url, interval, stop, waits, ready)
    results.put(waits)


@contextmanager
def health_probe_apart(base_url: str, interval: float = 0.02) -> Iterator[Probe]:
    """``health_probe`` from a process of its own, started before the block: a test that
    sends 8 MB frames (or watches every process's memory) holds its own process's GIL for
    long enough to show as the service's wait in a probe thread beside it (a Realtime flood:
    0.25 s of the test's own, with the service's loop free). The waits arrive when the
    block ends."""
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=_probe_apart, args=(base_url, interval, ready, stop, results), daemon=True)
    process.start()
    ready.wait(120)  # its imports done, a first answer in
    probe = Probe()
    try:
        yield probe
    finally:
        stop.set()
        probe.waits.extend(results.get(timeout=130))
        process.join(10)
