"""What a model's engine worker last reported on ``/metrics`` (its stats events), and waiting
for it to run nothing: a test that compares answers or costs needs the engine alone, and an
earlier test's request, left mid-prefill by its client, runs on until its chunk ends."""

from __future__ import annotations

import re
import time

import httpx

from tests.support.server import LiveServer


def worker_figure(live: LiveServer, name: str, model: str) -> float:
    """A figure the model's engine worker reported last; 0 before its first report (it has
    decoded nothing yet)."""
    text = httpx.get(live.base_url + "/metrics", timeout=10).text
    found = re.search(rf'^llm_backend_engine_{name}{{model="{model}",worker="0"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def idle(live: LiveServer, model: str, within: float = 120) -> None:
    """Wait until the model's engine worker runs no request: the cores and its batch are the
    next test's alone."""
    deadline = time.monotonic() + within
    while worker_figure(live, "requests_running", model) != 0:
        assert time.monotonic() < deadline, f"{model} never went idle"
        time.sleep(0.1)
