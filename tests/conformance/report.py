"""The report of `make fuzz`: its runs (JSON lines written by tests/conformance/conftest.py)
as a Markdown table per operation: examples sent over all seeds, failures, and the seeds.

    python -m tests.conformance.report fuzz-report.jsonl > fuzz-report.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def table(lines: list[str]) -> str:
    runs = [json.loads(line) for line in lines if line.strip()]
    seeds = [run["seed"] for run in runs]
    examples: dict[str, int] = defaultdict(int)
    failures: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        for operation, result in run["operations"].items():
            examples[operation] += result["examples"]
            if result["outcome"] == "failed":
                failures[operation].append(f"seed {run['seed']}: {result['message']}")
    rows = [
        "| operation | examples | runs | failures |",
        "| --- | ---: | ---: | --- |",
    ]
    for operation in sorted(examples):
        ran = sum(1 for run in runs if operation in run["operations"])
        rows.append(f"| {operation} | {examples[operation]} | {ran} | {'; '.join(failures[operation]) or '0'} |")
    total = sum(examples.values())
    failed = sum(len(found) for found in failures.values())
    summary = f"{len(runs)} runs (seeds {', '.join(map(str, seeds))}), {len(examples)} operations, {total} examples, {failed} failed operation runs."
    return summary + "\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        sys.stdout.write(table(fh.readlines()))
