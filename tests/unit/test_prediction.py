"""Predicted outputs: what OpenAI refuses beside a prediction, the predicted text, and how a
source of drafts follows an answer (engine/drafts.py, pure Python: no model)."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama import prediction
from llm_backend.backends.llama.engine import drafts
from llm_backend.backends.llama.engine.drafts import Draft
from llm_backend.backends.llama.params import chat_params
from llm_backend.errors import OpenAIError

PREDICTION = {"type": "content", "content": "def f():\n    return 1\n"}


@pytest.mark.parametrize(
    "param, value, code",
    [
        ("n", 2, "unsupported_value"),
        ("presence_penalty", 0.5, "unsupported_value"),
        ("frequency_penalty", 1, "unsupported_value"),
        ("logprobs", True, "unsupported_parameter"),
        ("top_logprobs", 2, "unsupported_parameter"),
        ("tools", [{"type": "function", "function": {"name": "f"}}], "unsupported_parameter"),
        ("audio", {"voice": "alloy", "format": "wav"}, "unsupported_parameter"),
        ("modalities", ["text", "audio"], "unsupported_parameter"),
        ("max_completion_tokens", 10, "unsupported_parameter"),
    ],
)
def test_what_openai_refuses_beside_a_prediction_is_refused_naming_it(param, value, code):
    with pytest.raises(OpenAIError) as raised:
        prediction.check({"prediction": PREDICTION, param: value})
    error = raised.value
    assert (error.status, error.param, error.code) == (400, param, code)
    assert "predicted outputs" in error.message
    prediction.check({param: value})  # the same without a prediction passes this rule


@pytest.mark.parametrize("param, value", [("n", 1), ("presence_penalty", 0), ("frequency_penalty", -1), ("logprobs", False), ("max_tokens", 10), ("modalities", ["text"])])
def test_values_openai_takes_beside_a_prediction_pass(param, value):
    prediction.check({"prediction": PREDICTION, param: value})


def test_the_predicted_text_reaches_the_engine_parameters_parts_joined():
    parts = {"type": "content", "content": [{"type": "text", "text": "a = 1\n"}, {"type": "text", "text": "b = 2\n"}]}
    params = chat_params({"messages": [{"role": "user", "content": "hi"}], "prediction": parts}, 512)
    assert params["prediction"] == "a = 1\nb = 2\n"
    assert chat_params({"messages": [{"role": "user", "content": "hi"}]}, 512)["prediction"] is None
    # Longer than the context could ever use: cut (never refused: it only speeds things up).
    huge = {"type": "content", "content": "x" * 10**6}
    assert len(chat_params({"messages": [{"role": "user", "content": "hi"}], "prediction": huge}, 512)["prediction"]) == 512 * 64


def follow(draft: Draft, tokens: list[int]) -> None:
    for token in tokens:
        draft.follow(token)


def test_a_prediction_is_drafted_from_its_first_token_and_followed():
    draft = Draft(list(range(100)), counted=True)
    first = draft.propose(room=512, others=0)
    assert first == list(range(len(first))) and len(first) >= 8  # trusted from the start
    follow(draft, list(range(10)))
    assert draft.propose(room=5, others=0) == [10, 11, 12, 13, 14]


def test_after_an_edit_the_rest_of_the_prediction_is_found_again():
    """An identifier renamed in the middle: the answer leaves the prediction at 40 (tokens
    900, 901 instead of 40, 41), then goes on with 42...; the cursor finds 42's place after
    NGRAM tokens and the tail is drafted again."""
    draft = Draft(list(range(100)), counted=True)
    follow(draft, list(range(40)) + [900, 901])
    assert draft.propose(room=512, others=0) == []  # lost
    follow(draft, [42, 43, 44])
    assert draft.at == 45
    assert draft.propose(room=512, others=0)[:3] == [45, 46, 47]


def test_a_repeated_phrase_aligns_at_or_after_where_the_answer_was():
    source = [1, 2, 3, 50, 51] + [1, 2, 3, 60, 61]
    draft = Draft(source, counted=True)
    follow(draft, [1, 2, 3, 50, 51, 7, 1, 2, 3])
    assert draft.at == 8  # the second "1 2 3", not the first


def test_a_draft_refused_at_its_first_token_pauses_drafting_longer_each_time():
    draft = Draft(list(range(100)), counted=True)
    pauses = []
    for _ in range(4):
        draft.verified(drafted=4, accepted=0)
        pauses.append(draft.pause)
        draft.pause = 0
    assert pauses == [1, 2, 4, 8]


def test_the_prediction_tokens_that_appeared_in_the_answer_are_counted_once_each():
    """OpenAI's accepted prediction tokens: those of the prediction that appeared in the
    answer (its rejected ones: the rest). An edit at 40-41 leaves out two; the tokens the
    cursor found the prediction again by count; a place the answer came back to counts once."""
    draft = Draft(list(range(100)), counted=True)
    follow(draft, list(range(40)) + [900, 901] + list(range(42, 60)))
    assert draft.appeared == 58
    follow(draft, [57, 58, 59])  # a repeated phrase: its places were counted already
    assert draft.appeared == 58


def test_a_prediction_the_answer_never_follows_has_none_appeared():
    draft = Draft(list(range(100, 200)), counted=True)
    follow(draft, list(range(30)))
    assert draft.appeared == 0


def test_drafts_grow_while_the_answer_follows_and_stop_while_it_strays():
    draft = Draft(list(range(1000)), counted=True)
    first = draft.size
    follow(draft, list(range(60)))
    assert draft.size > first and draft.size >= 16
    # The answer strays: each time 3 of its tokens meet the source, its next one differs.
    for start in range(100, 300, 20):
        follow(draft, [start, start + 1, start + 2, 5000 + start])
    assert draft.size == 0  # decoding one by one is cheaper than drafts this often wrong
    follow(draft, list(range(400, 460)))  # it follows the source again
    assert draft.size >= first


def test_the_prompt_is_drafted_from_in_short_drafts_until_it_proves_right():
    assert Draft([1, 2, 3], counted=False, aligned=False).size <= 3


def test_beside_other_streams_a_draft_waits_until_it_has_earned_its_rows():
    """Seven others: SHARE of a row per row they decode, verified once MIN_CHUNK are earned."""
    draft = Draft(list(range(1000)), counted=True)
    steps = 0
    while not (proposed := draft.propose(room=512, others=7)):
        steps += 1
    earned = min(draft.size, drafts.MIN_CHUNK)
    assert len(proposed) == earned
    assert steps == pytest.approx(earned / (drafts.SHARE * 7), abs=1)


def test_the_prompt_is_drafted_from_only_while_few_others_decode():
    draft = Draft([5, 6, 7, 8, 9, 10, 11, 12], counted=False, aligned=False)
    assert draft.propose(room=512, others=0) == []  # not aligned yet
    follow(draft, [5, 6, 7])
    assert draft.propose(room=512, others=0) == [8, 9]  # short until it proves right
    assert draft.propose(room=512, others=drafts.LOOKUP_BESIDE + 1) == []
