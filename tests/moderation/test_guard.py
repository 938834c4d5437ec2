"""A guard model judging moderations (moderation/guard.py). No Llama Guard GGUF can be
installed here (none is on the reachable registries), so the live test uses the default
chat model as the guard: its verdict is no judgement (a 135M chat model is no guard), but
the path is the real one - the model's own answer held to the verdict's grammar, greedy,
read and mapped - and what the service answers must follow from that verdict."""

from __future__ import annotations

import httpx
import pytest

from llm_backend.moderation.categories import CATEGORIES, closure
from llm_backend.moderation.guard import HAZARDS, categories_of
from tests.conftest import MODEL
from tests.support.clients import sdk


@pytest.mark.parametrize(
    "verdict, expected",
    [
        ("safe", set()),
        ("unsafe\nS1", {"illicit/violent", "illicit", "violence"}),
        ("unsafe\nS4,S10", {"sexual/minors", "sexual", "hate"}),
        ("unsafe\nS11", {"self-harm"}),
        ("unsafe\nS7", set()),  # privacy: no OpenAI category, not flagged by it
        ("unsafe", None),
        ("unsafe\nS15", None),
        ("I think it is fine", None),
    ],
)
def test_a_verdict_maps_to_openai_categories(verdict, expected):
    assert categories_of(verdict) == expected


def test_every_hazard_maps_to_known_categories():
    assert set(HAZARDS) == {f"S{number}" for number in range(1, 15)}
    assert all(set(categories) <= set(CATEGORIES) for categories in HAZARDS.values())


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    from tests.support.server import LiveServer

    env = {"LLM_BACKEND_MODERATION_GUARD": MODEL, "LLM_BACKEND_MODERATION_GUARD_INPUTS": "4"}
    with LiveServer(tmp_path_factory.mktemp("guard"), env=env) as live:
        yield live


def test_the_guard_model_judges_and_its_verdict_is_the_answer(guarded):
    client = sdk(guarded)
    texts = ["I will hurt you.", "What a lovely garden.", ""]
    first = client.moderations.create(input=texts).results
    again = client.moderations.create(input=texts).results
    assert [r.model_dump() for r in first] == [r.model_dump() for r in again], "greedy: the same verdicts"
    images = {category for codes in HAZARDS.values() for category in closure(list(codes))}
    for result in first:
        flagged = {category for category, on in result.categories.model_dump(by_alias=True).items() if on}
        assert result.flagged == bool(flagged) and flagged <= images
        assert all(0 <= score <= 1 for score in result.category_scores.model_dump(by_alias=True).values())
    assert not first[2].flagged  # a blank text is not sent to the guard
    # The guard's tokens reach the accounting as the moderation's, once.
    metrics = httpx.get(guarded.base_url + "/metrics", timeout=30).text
    counted = [line for line in metrics.splitlines() if line.startswith("llm_backend_completion_tokens_total{")]
    assert any('model="omni-moderation-latest"' in line for line in counted), counted


def test_a_guard_must_be_a_local_chat_model(tmp_path):
    from llm_backend.settings import Settings

    with pytest.raises(ValueError, match="moderation_guard"):
        Settings(moderation_guard="all-minilm-l6-v2", data_dir=tmp_path)


def test_the_guards_generations_are_bounded_per_request(guarded):
    # Each input is one generation of the guard (its whole template each time): past
    # moderation_guard_inputs the request is refused before any runs (issue #39).
    def generated() -> float:
        metrics = httpx.get(guarded.base_url + "/metrics", timeout=30).text
        lines = [line for line in metrics.splitlines() if line.startswith("llm_backend_completion_tokens_total{")]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    before = generated()
    answer = httpx.post(guarded.api + "/moderations", json={"input": ["What a lovely garden."] * 5}, timeout=60)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == ("input", "array_above_max_length")
    assert "maximum length 4" in error["message"]
    assert generated() == before
