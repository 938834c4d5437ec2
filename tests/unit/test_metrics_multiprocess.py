"""Several uvicorn worker processes (prometheus-client's multiprocess mode): a scrape of any
one of them counts the requests of all (http/metrics.py). Real processes; no server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
# One "worker": counts `n` answered requests of an operation, then prints its scrape.
WORKER = """
import sys
from llm_backend.backends.registry import ModelRegistry
from llm_backend.http import context
from llm_backend.http.metrics import Metrics

metrics = Metrics(ModelRegistry([]))
for _ in range(int(sys.argv[1])):
    metrics.begin(context.Record(operation_id="createChatCompletion")).finished(200)
sys.stdout.write(metrics.response().body.decode())
"""


def run_worker(directory: Path, requests: int) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", WORKER, str(requests)], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def answered(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "llm_backend_requests_total" and sample.labels.get("operation") == "createChatCompletion"
    )


def test_a_scrape_of_one_worker_process_counts_the_requests_of_every_worker(tmp_path):
    run_worker(tmp_path, 2)
    assert answered(run_worker(tmp_path, 3)) == 5
