"""The Grafana dashboard (docs/grafana-dashboard.json) asks only for metrics the service exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from llm_backend.backends.registry import ModelRegistry
from llm_backend.http.metrics import Metrics
from llm_backend.storage import Database

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def _exposed_sample_names(tmp_path: Path) -> set[str]:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    metrics = Metrics(ModelRegistry([]), database)
    text = metrics.response().body.decode()
    database.dispose()
    names = set()
    for family in text_string_to_metric_families(text):
        kind_suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names |= {family.name + suffix for suffix in kind_suffixes}
    return names


def test_every_metric_of_the_dashboard_is_exposed(tmp_path):
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {
        name for panel in panels for target in panel["targets"] for name in re.findall(r"llm_backend_\w+", target["expr"])
    }
    assert queried and queried <= _exposed_sample_names(tmp_path)
