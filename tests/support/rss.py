"""Peak memory of every process of a live service while a request runs (the hostile suite).

Each process's kernel peak (``VmHWM``) is reset to its current size when the watch starts
(``/proc/PID/clear_refs`` ← 5), so the peak read later is this request's, not the model
load's; a thread samples every process in the tree (workers started or restarted during the
request included) every 20 ms, so a worker killed for its size is still counted.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tests.support.server import children

MiB = 1 << 20
# Issue #33: no process of the service grows more than this over its own size before a request.
GROWTH_BUDGET = 400 * MiB


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (``server.children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found


def status_kib(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


@dataclass
class Process:
    pid: int
    command: str
    before: int  # bytes of RSS when first seen (at the start, or when it was born)
    peak: int

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.before)


@dataclass
class Growth:
    """What every process of the tree grew by while the watch ran."""

    processes: dict[int, Process] = field(default_factory=dict)

    def worst(self) -> Process | None:
        return max(self.processes.values(), key=lambda p: p.growth, default=None)

    @property
    def largest(self) -> int:
        worst = self.worst()
        return worst.growth if worst else 0

    def report(self) -> str:
        rows = sorted(self.processes.values(), key=lambda p: -p.growth)
        return "; ".join(f"pid {p.pid} +{p.growth / MiB:.0f} MiB ({p.command[:60]})" for p in rows)

    def assert_within(self, budget: int = GROWTH_BUDGET) -> None:
        assert self.largest <= budget, f"a process grew past {budget / MiB:.0f} MiB: {self.report()}"


def _reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


@contextmanager
def watch(root_pid: int, interval: float = 0.02) -> Iterator[Growth]:
    """Measure the growth of ``root_pid``'s whole tree during the block."""
    growth = Growth()
    stop = threading.Event()

    def sample(first: bool = False) -> None:
        for pid in tree(root_pid):
            process = growth.processes.get(pid)
            if process is None:
                if first:
                    _reset_peak(pid)
                rss = status_kib(pid, "VmRSS")
                if rss is None:
                    continue
                # A process born during the watch starts from its size when first seen.
                process = growth.processes[pid] = Process(pid, command(pid), rss * 1024, rss * 1024)
            peak = status_kib(pid, "VmHWM")
            if peak is not None:
                process.peak = max(process.peak, peak * 1024)

    def run() -> None:
        while not stop.wait(interval):
            sample()

    sample(first=True)
    thread = threading.Thread(target=run, name="rss-watch", daemon=True)
    thread.start()
    try:
        yield growth
    finally:
        stop.set()
        thread.join()
        sample()
