"""`make bench` (moderations, issue #36): a short text moderated through the service, p50
over sequential requests (bar <= 50 ms), beside its ceiling: the same text embedded through
``/v1/embeddings`` with the model the classifier reads (the classifier adds a matrix
product to it), and the embedding alone in-process. With ``--cv``: the classifier's
cross-validated figures over its own examples, the figures its threshold was chosen by
(moderation/classifier.py), for each candidate threshold and penalty.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.openai_runs import finish, load_average  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

TEXT = "You are an idiot and I will find out where you live."


def timed(call, count: int) -> float:
    """p50 milliseconds of ``count`` calls (after 5 to warm up)."""
    for _ in range(5):
        call()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def latency(count: int, workdir: Path) -> list[str]:
    from llm_backend.backends.embedding.embedder import Embedder

    with LiveServer(workdir) as live:
        client = httpx.Client(base_url=live.api, timeout=60)

        def moderate() -> None:
            assert client.post("/moderations", json={"input": TEXT}).status_code == 200

        def embed() -> None:
            assert client.post("/embeddings", json={"model": "all-minilm-l6-v2", "input": TEXT}).status_code == 200

        moderated, embedded = timed(moderate, count), timed(embed, count)
    embedder = Embedder.from_package(workdir / "in-process", n_threads=1)
    alone = timed(lambda: embedder.embed([TEXT]), count)
    return [
        f"short text moderated, p50 over {count}: {moderated:.1f} ms  (bar <= 50 ms)",
        f"  the same text embedded through /v1/embeddings: {embedded:.1f} ms ({moderated / embedded:.2f}x)",
        f"  the embedding alone, in-process (the ceiling): {alone:.1f} ms ({moderated / alone:.2f}x)",
    ]


def cross_validation(workdir: Path, folds: int = 8) -> list[str]:
    from llm_backend.moderation import classifier
    from llm_backend.backends.embedding.embedder import Embedder

    examples = classifier.examples()
    vectors = Embedder.from_package(workdir / "in-process").embed([example.text for example in examples])
    labels = [example.categories for example in examples]
    harmful = np.array([bool(found) for found in labels])
    order = np.random.default_rng(0).permutation(len(examples))
    lines = [f"{folds}-fold cross-validation over the {len(examples)} examples: recall on harmful / benign flagged"]
    for l2 in (0.01, 0.03, 0.1, 0.3):
        rows = np.zeros((len(examples), 13))
        for fold in np.array_split(order, folds):
            rest = np.setdiff1d(order, fold)
            weights = classifier.fit(vectors[rest], [labels[index] for index in rest], l2)
            rows[fold] = classifier.scores(weights, vectors[fold])
        cells = []
        for threshold in (0.5, 0.6, 0.7, 0.8, 0.9):
            flagged = (rows >= threshold).any(axis=1)
            cells.append(f"{threshold}: {flagged[harmful].mean():.2f}/{flagged[~harmful].mean():.2f}")
        lines.append(f"  l2={l2}: " + "  ".join(cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--cv", action="store_true", help="the cross-validated figures too")
    args = parser.parse_args()
    out = ROOT / "bench-results" / time.strftime("%Y%m%d-%H%M%S-moderation")
    out.mkdir(parents=True)
    lines = [f"# Moderations, {time.strftime('%Y-%m-%d %H:%M:%S')}, load average before: {load_average()}", "```"]
    lines += latency(args.count, out)
    if args.cv:
        lines += cross_validation(out)
    finish(out, lines)


if __name__ == "__main__":
    main()
