"""The local moderation classifier judged on a labelled set it never learnt from
(labelled.yaml), through a live server and the official SDK: the issue's bars (recall on
harmful texts, false positives on benign ones), and each category's figures printed for
docs/MODERATION.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llm_backend.moderation.categories import CATEGORIES, closure
from llm_backend.moderation.classifier import examples
from tests.support.clients import sdk

LABELLED = yaml.safe_load((Path(__file__).parent / "labelled.yaml").read_text())
HARMFUL = [(category, text) for category, text in LABELLED["harmful"]]
BENIGN = LABELLED["benign"]


def test_the_labelled_set_is_apart_from_the_examples_and_large_enough():
    learnt = {example.text.casefold() for example in examples()}
    judged = [text for _, text in HARMFUL] + BENIGN
    assert not learnt & {text.casefold() for text in judged}
    assert len(judged) >= 60 and len(HARMFUL) >= 30 and len(BENIGN) >= 30
    assert {category for category, _ in HARMFUL} == set(CATEGORIES), "every category has harmful texts"


@pytest.fixture(scope="module")
def judged(server):
    texts = [text for _, text in HARMFUL] + BENIGN
    answer = sdk(server).moderations.create(model="omni-moderation-latest", input=texts)
    assert len(answer.results) == len(texts)
    return answer.results[: len(HARMFUL)], answer.results[len(HARMFUL) :]


def test_harmful_texts_are_flagged_and_benign_ones_are_not(judged):
    harmful, benign = judged
    recall = sum(result.flagged for result in harmful) / len(harmful)
    false_positives = [text for text, result in zip(BENIGN, benign) if result.flagged]
    missed = [text for (_, text), result in zip(HARMFUL, harmful) if not result.flagged]
    print(f"\nrecall {recall:.2f} ({len(harmful) - len(missed)}/{len(harmful)}), missed: {missed}")
    print(f"false positives {len(false_positives) / len(benign):.2f} ({len(false_positives)}/{len(benign)}): {false_positives}")
    assert recall >= 0.85
    assert len(false_positives) / len(benign) <= 0.10


def test_each_category_figures(judged):
    """Per category, over every judged text: a text belongs to its category and to the
    broader ones it implies; printed as docs/MODERATION.md's table. The bar here is only
    that each category finds some of its texts (weak ones are named in the docs)."""
    harmful, benign = judged
    truth = [closure([category]) for category, _ in HARMFUL] + [set()] * len(benign)
    results = [*harmful, *benign]
    print("\n| category | texts | recall | precision |")
    for category in CATEGORIES:
        flagged = [result.categories.model_dump(by_alias=True)[category] for result in results]
        relevant = [category in labels for labels in truth]
        hits = sum(f and r for f, r in zip(flagged, relevant))
        recall = hits / sum(relevant)
        precision = hits / sum(flagged) if any(flagged) else 1.0
        print(f"| {category} | {sum(relevant)} | {recall:.2f} | {precision:.2f} |")
        assert hits > 0, f"{category} found none of its {sum(relevant)} texts"
