"""The local moderation classifier: OpenAI's 13 categories scored from the sentence
embedding the embedding model gives a text (all-MiniLM-L6-v2,
``backends/embedding/embedder.py``).

Each category is a logistic regression over that embedding, fitted when the classifier is
first used (a few milliseconds) to the labelled examples in ``examples.yaml``: the texts
of the category and of the narrower ones that imply it are its positives, every other
text (other categories, and benign texts chosen to look like harm) its negatives, the two
sides weighted equally. So the weights follow from the examples, which anyone can read and
extend, and a score is a probability the threshold reads directly.

Why embeddings and not a word list or a packaged classifier: a sentence embedding sees
"kill the process" and "I will kill you" as different things, which profanity and
hate-speech classifiers built on word counts (alt-profanity-check, hatesonar) do not; they
also cover two of the thirteen categories at most. What each category achieves on the
held-out labelled set is in docs/MODERATION.md; it is a small model, and weak where harm is
a matter of context rather than of words.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

from .categories import CATEGORIES, closure

# Chosen by 8-fold cross-validation over the examples (`bench/moderation.py --cv`), never
# on the test set: the pair that keeps recall on held-out harmful examples at 0.85 or more
# with the fewest held-out benign ones flagged (0.86 and 0.12 there; the examples' benign
# texts are the hardest ones we could write). Balanced classes put even odds at 0.5; each
# category has far fewer positives than negatives, so a higher threshold buys precision.
THRESHOLD = 0.6
"""A category is flagged when its score reaches this."""
L2 = 0.01
"""The ridge penalty on the weights (not the bias)."""


@dataclass(frozen=True)
class Example:
    text: str
    categories: frozenset[str]


def examples() -> list[Example]:
    """The labelled examples that ship with the package."""
    document = yaml.safe_load(resources.files(__package__).joinpath("examples.yaml").read_text())
    found = []
    for label, texts in document.items():
        labels = frozenset() if label == "benign" else frozenset(closure([label]))
        found += [Example(text, labels) for text in texts]
    return found


def fit(vectors: np.ndarray, labels: list[frozenset[str]], l2: float = L2) -> np.ndarray:
    """One weight row per category (the last column the bias), by Newton's method on the
    class-balanced, ridge-penalised logistic loss (convex: a few steps converge)."""
    features = np.hstack([vectors.astype(np.float64), np.ones((len(vectors), 1))])
    penalty = np.full(features.shape[1], l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    weights = np.zeros((len(CATEGORIES), features.shape[1]))
    for row, category in enumerate(CATEGORIES):
        target = np.array([category in found for found in labels], dtype=np.float64)
        positives = target.sum()
        balance = np.where(target == 1, len(target) / (2 * positives), len(target) / (2 * (len(target) - positives)))
        w = weights[row]
        for _ in range(25):
            p = 1 / (1 + np.exp(-features @ w))
            gradient = features.T @ (balance * (p - target)) + penalty * w
            hessian = (features * (balance * p * (1 - p))[:, None]).T @ features + np.diag(penalty)
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
    return weights


def scores(weights: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each text's score per category (rows: texts, columns: CATEGORIES). A broad category
    scores at least what the narrow ones that imply it score (a threat is harassment too,
    as OpenAI's answers have it), so its flag follows theirs."""
    features = np.hstack([vectors.astype(np.float64), np.ones((len(vectors), 1))])
    found = 1 / (1 + np.exp(-features @ weights.T))
    for column, category in enumerate(CATEGORIES):
        for broader in closure([category]) - {category}:
            index = CATEGORIES.index(broader)
            found[:, index] = np.maximum(found[:, index], found[:, column])
    return found
