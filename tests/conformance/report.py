"""The report of `make fuzz`: its runs (JSON lines written by tests/conformance/conftest.py)
as a Markdown table per database and operation: examples sent over all seeds, failures,
and the seeds.

    python -m tests.conformance.report fuzz-report.jsonl > fuzz-report.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def table(lines: list[str]) -> str:
    runs = [json.loads(line) for line in lines if line.strip()]
    databases = sorted({run.get("database", "sqlite") for run in runs})
    seeds = list(dict.fromkeys(run["seed"] for run in runs))
    examples: dict[tuple[str, str], int] = defaultdict(int)
    ran: dict[tuple[str, str], int] = defaultdict(int)
    failures: dict[tuple[str, str], list[str]] = defaultdict(list)
    for run in runs:
        database = run.get("database", "sqlite")
        for operation, result in run["operations"].items():
            examples[operation, database] += result["examples"]
            ran[operation, database] += 1
            if result["outcome"] == "failed":
                failures[operation, database].append(f"seed {run['seed']}: {result['message']}")
    header = "| operation | " + " | ".join(f"{database} examples | runs | failures" for database in databases) + " |"
    rows = [header, "| --- |" + " ---: | ---: | --- |" * len(databases)]
    for operation in sorted({operation for operation, _ in examples}):
        cells = [
            f"{examples[operation, database]} | {ran[operation, database]} | {'; '.join(failures[operation, database]) or '0'}"
            for database in databases
        ]
        rows.append(f"| {operation} | " + " | ".join(cells) + " |")
    total = sum(examples.values())
    failed = sum(len(found) for found in failures.values())
    summary = (
        f"{len(runs)} runs (seeds {', '.join(map(str, seeds))}; databases {', '.join(databases)}), "
        f"{len({operation for operation, _ in examples})} operations, {total} examples, {failed} failed operation runs."
    )
    return summary + "\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        sys.stdout.write(table(fh.readlines()))
