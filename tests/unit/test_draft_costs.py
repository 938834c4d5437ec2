"""Drafts sized by what the device measures (engine/drafts.py's ``StepCosts``, issue #57):
fed the timings an executor records, as a CPU and a GPU gave them (pure Python: no model).

The GPU's figures are the H200's (bench/results/gpu-check-h200-2026-11-26.json, row d:
one row 1.0 ms; 5, 9, 17, 33 and 64 rows in 1.20, 1.62, 1.65, 1.33-1.57 and 1.15-1.52
steps; beside seven, each draft row +9 % of a step of eight); the CPU's are 2 cores' (docs/
SCALING.md, quiet: one row 15.1 ms; 5, 9, 17, 33 and 64 rows in 2.47, 3.75, 6.08, 10.76 and
16.56 steps)."""

from __future__ import annotations

import numpy as np
import pytest

from llm_backend.backends.llama.engine import drafts
from llm_backend.backends.llama.engine.drafts import Draft, StepCosts
from llm_backend.backends.llama.engine.verification import margin

GPU = {1: 1.0e-3, 5: 1.20e-3, 9: 1.62e-3, 17: 1.65e-3, 33: 1.45e-3, 64: 1.35e-3}
CPU = {1: 15.1e-3, 5: 2.47 * 15.1e-3, 9: 3.75 * 15.1e-3, 17: 6.08 * 15.1e-3, 33: 10.76 * 15.1e-3, 64: 16.56 * 15.1e-3}


def measured(timings: dict[int, float], times: int = 3) -> StepCosts:
    costs = StepCosts()
    for _ in range(times):
        for rows, seconds in timings.items():
            costs.record(rows, seconds)
    return costs


def trusted(costs: StepCosts) -> Draft:
    """A prediction the answer has followed for 200 tokens (right 99 % of the time)."""
    draft = Draft(list(range(1000)), counted=True, costs=costs)
    for token in range(200):
        draft.follow(token)
    return draft


def test_unmeasured_costs_are_two_cores_figures_and_size_drafts_as_before():
    costs = StepCosts()
    assert costs.cost(9) == pytest.approx(drafts.STEP_COST + drafts.ROW_COST * 9)
    assert Draft(list(range(100)), counted=True, costs=costs).size == 8  # a prediction's first draft


def test_where_rows_are_nearly_free_drafts_grow_long_and_on_two_cores_they_stay_short():
    """A fresh prediction (trusted at 95 %): 8 tokens by the constants, about as many by two
    cores' timings, several times more where 17 rows cost 1.65 steps."""
    fresh = drafts.PREDICTION_PRIOR[0] / drafts.PREDICTION_PRIOR[1]
    gpu, cpu = measured(GPU).best_size(fresh), measured(CPU).best_size(fresh)
    assert gpu >= 32
    assert 6 <= cpu <= 12
    # Right 99 % of the time: long on both (two cores: 64 rows for 16.4 steps, 47 tokens).
    assert trusted(measured(GPU)).size == trusted(measured(CPU)).size == drafts.MAX_DRAFT


def test_where_a_row_costs_a_whole_step_no_draft_pays():
    costs = measured({rows: rows * 10e-3 for rows in (1, 2, 4, 8, 16, 32, 64)})
    assert trusted(costs).size == 0


def test_a_size_not_timed_for_long_is_estimated_from_the_sizes_timed_since():
    """Rows were dear for a while (a loaded machine: 9 rows for 9 steps), so drafts stopped
    and only single rows were timed; after ``STALE`` of those, drafts come back to be timed."""
    costs = measured({1: 10e-3, 9: 90e-3})
    assert Draft(list(range(100)), counted=True, costs=costs).size == 0
    for _ in range(drafts.STALE + drafts.REFRESH):
        costs.record(1, 10e-3)
    assert Draft(list(range(100)), counted=True, costs=costs).size == 8


def test_estimates_lie_on_the_timings_and_between_them():
    costs = measured({1: 1.0, 16: 2.5})
    assert costs.cost(16) == pytest.approx(2.5)
    assert costs.cost(8) == pytest.approx(1 + 1.5 * 7 / 15)
    assert costs.cost(32) == pytest.approx(2.5 + 1.5 / 15 * 16)  # past them: the same slope


def test_verifications_that_gave_fewer_tokens_than_they_cost_pause_drafting():
    """Two cores: 8 drafts cost 3.95 steps; 2 taken (3 tokens) did not pay; then all 8 taken
    (9 tokens), the last two together paid."""
    draft = Draft(list(range(100)), counted=True)
    assert len(draft.propose(room=512, others=0)) == 8
    draft.verified(drafted=8, accepted=2)
    assert draft.pause == 1
    draft.pause = 0
    draft.propose(room=512, others=0)
    draft.verified(drafted=8, accepted=8)
    assert draft.pause == 0 and draft.backoff == 1


def test_verifications_cut_by_near_ties_shorten_the_drafts_and_pause_them():
    """Text full of near ties (verification.py decides each alone): a tie at the first row
    gives nothing for the step it cost."""
    draft = trusted(StepCosts())
    first = draft.size
    for _ in range(3):
        draft.pause = 0
        draft.propose(room=512, others=0)
        draft.verified(drafted=first, accepted=0, tie=True)
    assert draft.pause > 0 and draft.size < first


def test_where_rows_are_cheap_one_draft_taken_pays():
    draft = Draft(list(range(100)), counted=True, costs=measured(GPU))
    assert len(draft.propose(room=512, others=0)) >= 8
    draft.verified(drafted=8, accepted=1)
    assert draft.pause == 0


def test_beside_others_a_draft_earns_rows_faster_where_a_row_costs_less_of_their_step():
    """A step of eight at 2.5 ms, 24 rows at 2.6 ms: a draft row costs the seven 0.25 % of
    their step, not the 9.7 % of two cores' figures, so it earns ~39x the rows for the same
    share of their time."""
    cheap = measured({1: 1.0e-3, 8: 2.5e-3, 24: 2.6e-3})
    assert StepCosts().pace(7) == pytest.approx(drafts.SHARE * 7)
    assert cheap.pace(7) > 30 * StepCosts().pace(7)
    draft = Draft(list(range(1000)), counted=True, costs=cheap)
    assert len(draft.propose(room=512, others=7)) >= drafts.MIN_CHUNK  # at its first step
    assert len(Draft(list(range(1000)), counted=True).propose(room=512, others=7)) == 0  # two cores: 16 steps on


def test_no_draft_spans_more_rows_than_the_device_computes_exactly():
    costs = measured(GPU)
    costs.exact_rows = 5
    draft = trusted(costs)
    assert len(draft.propose(room=512, others=0)) == 4
    costs.exact_rows = 1  # nothing exact: no drafts
    assert draft.propose(room=512, others=0) == []


def test_the_margin_is_the_best_logit_over_the_second_wherever_they_lie():
    rng = np.random.default_rng(57)
    for logits in [rng.normal(size=4096).astype(np.float32) for _ in range(20)] + [
        np.array([3.0, 1.0, 2.0], np.float32), np.array([1.0, 2.0, 3.0], np.float32), np.array([2.0, 2.0, 1.0], np.float32),
    ]:
        best = int(logits.argmax())
        second, first = np.sort(logits)[-2:]
        assert margin(logits, best) == pytest.approx(float(first - second))
