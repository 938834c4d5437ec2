"""The service's Prometheus samples on ``/metrics`` (read with prometheus_client's parser), what
a model's engine worker last reported there (its stats events), and waiting for it to run
nothing: a test that compares answers or costs needs the engine alone, and an earlier test's
request, left mid-prefill by its client, runs on until its chunk ends."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import TLS
from tests.support.server import LiveServer


def scrape_text(live: LiveServer, key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(live.base_url + "/metrics", headers=headers, timeout=30, verify=TLS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def samples_of(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(live: LiveServer, key: str | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample: (name, labels) -> value."""
    return samples_of(scrape_text(live, key))


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_until(live: LiveServer, done, key: str | None = None) -> dict:
    """A scrape once ``done(samples)`` holds (or 10 s passed): a stream's last bytes reach
    its client just before its server counts it."""
    deadline = time.monotonic() + 10
    while not done(after := scrape(live, key)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return after


def worker_figure(live: LiveServer, name: str, model: str) -> float:
    """A figure the model's engine worker reported last; 0 before its first report (it has
    decoded nothing yet)."""
    return value(scrape(live), f"llm_backend_engine_{name}", model=model, worker="0")


def idle(live: LiveServer, model: str, within: float = 120) -> None:
    """Wait until the model's engine worker runs no request: the cores and its batch are the
    next test's alone."""
    deadline = time.monotonic() + within
    while worker_figure(live, "requests_running", model) != 0:
        assert time.monotonic() < deadline, f"{model} never went idle"
        time.sleep(0.1)
