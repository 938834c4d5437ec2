"""Where the suite's CPU goes, test by test: a pytest plugin that charges each test with the CPU
its test process's whole tree used while it ran (the process itself, its zygote, the servers
forked from it and their engine and audio workers, running or already reaped). The suite is
bound by its cores (two, kept 93-99 % busy), so a test's CPU, not its seconds, is what it
costs the run; a sampler of every process cannot say which test a shared server worked for.

    TREE_CPU_DIR=/tmp/cpu .venv/bin/python -m pytest -n 3 --dist loadfile -p tests.support.tree_cpu
    .venv/bin/python -m tests.support.tree_cpu /tmp/cpu [N]  # the N files and tests that cost most (30)

A test's share starts when the one before it ended, so a module's fixtures are charged to its
first test and their teardown to its last. Reading /proc costs ~1 ms a test."""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.support.rss import tree
from tests.support.server import cpu_seconds

FOLDER = "TREE_CPU_DIR"


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants: their own, and their reaped children's."""
    seconds = 0.0
    for member in tree(pid):
        try:
            seconds += cpu_seconds(member, reaped=True)
        except OSError:
            continue  # ended meanwhile: its parent's reaped children count it
    return seconds


_charged: list[tuple[str, float]] = []
_last: float | None = None


# The protocol hook runs only in the process that runs the test: a pytest-xdist controller
# gets every test's log hooks too, and its tree holds every worker's.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _last
    if _last is None:  # the first test: what collection used is not charged to it
        _last = tree_cpu(os.getpid())
    yield
    now = tree_cpu(os.getpid())
    _charged.append((item.nodeid, now - _last))
    _last = now


def pytest_sessionfinish(session) -> None:
    folder = os.environ.get(FOLDER)
    if folder and _charged:
        Path(folder).mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        (Path(folder) / f"{worker}-{os.getpid()}-{time.time_ns()}.json").write_text(json.dumps(_charged))


def main(folder: str, shown: int = 30) -> None:
    tests: list[tuple[float, str]] = []
    for path in Path(folder).glob("*.json"):
        tests += [(seconds, nodeid) for nodeid, seconds in json.loads(path.read_text())]
    files: collections.Counter[str] = collections.Counter()
    for seconds, nodeid in tests:
        files[nodeid.split("::")[0]] += seconds
    print(f"{sum(files.values()):.0f} CPU-seconds over {len(tests)} tests")
    for name, seconds in files.most_common(shown):
        print(f"{seconds:8.1f}  {name}")
    print()
    for seconds, nodeid in sorted(tests, reverse=True)[:shown]:
        print(f"{seconds:8.1f}  {nodeid}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(shown) for shown in sys.argv[2:3]))
