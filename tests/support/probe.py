"""A ``/health`` probe beside a hostile request: how long the service's event loop kept a
request that costs nothing waiting while it worked (issue #39: work sized by the input on the
loop froze every tenant); and ``loop_ticker``, the same question asked of an event loop in
the test's own process, of a part of the service run on it."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
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


# A control: an HTTP server that does nothing but answer, in a process of its own, asked at
# the same moments as the service (``PairedProbe``). What it waited, the machine made it wait.
CONTROL_SERVER = """
import asyncio

ANSWER = b'HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 15\\r\\n\\r\\n{"status":"ok"}'


async def answer(reader, writer):
    try:
        while await reader.readuntil(b"\\r\\n\\r\\n"):
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
"""

PAIRED_PROBE = """
import sys, threading, time, http.client

targets = [(sys.argv[1], int(sys.argv[2])), ("127.0.0.1", int(sys.argv[3]))]
start = threading.Barrier(len(targets))
waits = [0.0] * len(targets)


def ask(index, host, port):
    connection = None
    while True:
        start.wait()
        asked = time.time()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(host, port, timeout=60)
            connection.request("GET", "/health")
            connection.getresponse().read()
        except OSError:
            connection = None
        waits[index] = time.time() - asked
        start.wait()
        if index == 0:
            print(asked, *waits, flush=True)
            time.sleep(0.02)


for index, (host, port) in enumerate(targets[1:], 1):
    threading.Thread(target=ask, args=(index, host, port), daemon=True).start()
ask(0, *targets[0])
"""


@dataclass(frozen=True)
class Round:
    asked: float  # time.time() when both were asked
    service: float  # seconds the service's /health took
    control: float  # seconds the control server took, asked at the same moment

    @property
    def excess(self) -> float:
        """The service's own part of its wait: beyond what the machine made the control wait."""
        return self.service - self.control


class PairedProbe:
    """``/health`` of a live service and of a control server (``CONTROL_SERVER``), asked at
    the same moments every 20 ms from a process of their own, each from its own thread.

    Why a control: on a machine of 2 cores shared with other test processes, a probe's wait
    is the service's (a loop held by work sized by the input) plus the machine's (the
    probe, or the server, not scheduled at once; a page fault; another process's burst).
    The control is a process that holds nothing: what it waited at the same moment is the
    machine's, and only what the service waited beyond it (``Round.excess``) is held
    against the service. The probe's own process being descheduled shows in both, and so
    cancels out; a service that holds its loop shows in it alone. The bound itself stays
    whole (250 ms of the service's own); the raw waits are kept for the report.
    """

    def __init__(self, base_url: str) -> None:
        import subprocess
        import sys

        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        self.control = subprocess.Popen([sys.executable, "-c", CONTROL_SERVER], stdout=subprocess.PIPE, text=True)
        control_port = self.control.stdout.readline().strip()
        command = [sys.executable, "-c", PAIRED_PROBE, host, port, control_port]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.rounds: list[Round] = []
        self.thread = threading.Thread(target=self._read, name="paired-probe", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            asked, service, control = map(float, line.split())
            self.rounds.append(Round(asked, service, control))

    def since(self, started: float) -> list[Round]:
        """The rounds answered after ``started`` (``time.time()``)."""
        return [round_ for round_ in list(self.rounds) if round_.asked + round_.service >= started]

    def settled(self, since: float, timeout: float = 10.0) -> None:
        """Until a round asked at or after ``since`` (``time.time()``) is in: the rounds are
        asked one after another, so every round asked before it, one that waited through
        the end of a block included, is in too (about 20 ms, where a fixed 100 ms sleep was)."""
        deadline = time.monotonic() + timeout
        while not (self.rounds and self.rounds[-1].asked >= since) and time.monotonic() < deadline:
            time.sleep(0.005)

    def worst(self, started: float) -> Round | None:
        """The round since ``started`` in which the service waited most beyond the control."""
        return max(self.since(started), key=lambda round_: round_.excess, default=None)

    def stop(self) -> None:
        for process in (self.process, self.control):
            process.terminate()
            process.wait()
        self.thread.join()


@dataclass
class LoopTicks(Probe):
    busy: list[float] = field(default_factory=list)  # the loop thread's own CPU in each wait

    @property
    def longest_busy(self) -> float:
        """The longest the loop worked between two of its turns: what a wait was made of
        when the machine was not the cause (a loaded machine's scheduling is not the loop's
        work, and stretched every wait in a full run to 13 ms)."""
        return max(self.busy, default=0.0)


@asynccontextmanager
async def loop_ticker() -> AsyncIterator[LoopTicks]:
    """The running loop's waits during the block: a task asking for a turn every
    millisecond, each wait past that kept (its ``longest``: what the block's work held the
    loop for at most), with the loop thread's CPU in it (``busy``)."""
    probe, done = LoopTicks(), asyncio.Event()

    async def ticking() -> None:
        while not done.is_set():
            before, worked = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            probe.waits.append(time.perf_counter() - before)
            probe.busy.append(time.thread_time() - worked)

    ticker = asyncio.create_task(ticking())
    await asyncio.sleep(0.01)
    try:
        yield probe
    finally:
        done.set()
        await ticker
