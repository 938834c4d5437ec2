"""`make fuzz` writes what it ran: one JSON line per run (its seed, and per operation the
examples sent and the outcome) appended to the file named by FUZZ_REPORT; report.py turns
the lines into docs/CONFORMANCE.md's table."""

from __future__ import annotations

import json
import os
import re
import sys

LONG_RUN = "test_served_operations_conform_to_the_spec_long_run"
_outcomes: dict[str, dict] = {}


def pytest_collection_modifyitems(items) -> None:
    # Schemathesis names its items per operation, but pytest 9.2 builds a nodeid from the
    # function's name and parameters only, so all 56 share one. pytest-xdist schedules
    # whole files by nodeid (`make test`: --dist loadfile): 56 items under one nodeid ran
    # as one. Each gets its operation as the nodeid's parameters (pytest's own NodeId).
    for item in items:
        label = getattr(item, "operation_label", None)
        if label and item.id.params is None:
            item._id = item.id.with_params(label)


def pytest_runtest_logreport(report) -> None:
    if LONG_RUN not in report.nodeid or report.when != "call":
        return
    # Schemathesis' items share the function's nodeid; the operation is in the location.
    label = re.search(r"\[(.*)\]$", report.location[2] if report.location else report.nodeid)
    message = ""
    if report.failed:
        lines = str(report.longrepr or "failed").strip().splitlines()
        # The first of the error's own lines ("E   ...", or schemathesis' "- ST108 ..."), else the last.
        found = [line for line in lines if re.match(r"^(E\s+\S|\s*\|?\s*- ST\d+)", line)]
        message = (found[0] if found else lines[-1]).lstrip("E |-").strip()[:300]
    _outcomes[label.group(1) if label else report.nodeid] = {"outcome": report.outcome, "message": message}


def pytest_sessionfinish(session, exitstatus) -> None:
    path = os.environ.get("FUZZ_REPORT")
    module = sys.modules.get("tests.conformance.test_schemathesis")
    if not path or not _outcomes or module is None:
        return
    examples = module.EXAMPLES
    labels = {operation.label: operation.definition.raw["operationId"] for operation in _operations(module)}
    operations = {
        labels.get(label, label): {**outcome, "examples": examples.get(labels.get(label, label), 0)}
        for label, outcome in _outcomes.items()
    }
    with open(path, "a") as fh:
        fh.write(json.dumps({"seed": module.SEED, "database": module.FUZZ_DATABASE, "operations": operations}) + "\n")


def _operations(module):
    return [result.ok() for result in module.schema.get_all_operations()]
