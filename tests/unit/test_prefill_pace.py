"""Prompt chunks sized by time (engine/scheduler.py's ``Pace``, issue #59): fed the timings an
executor records, as 2 cores and a GPU gave them (pure Python: no model).

The CPU's figures are SmolLM2's on 2 shared cores, 2 batch threads, a 10k-token prompt in
chunks of 512 (load 2): 3.3 s at the start, 5.3-8 s from 512 to 4k tokens of context, 10-14
ms a token at 8-10k; the GPU's are a chunk of 2048 in a few milliseconds."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.engine.prefixes import BLOCK
from llm_backend.backends.llama.engine.scheduler import CHUNK_SECONDS, Pace


def cpu_pace() -> Pace:
    """The first chunks of a 10k-token prompt on 2 cores: 6.4 ms a token at its start, each
    cell of depth ~1.1 us more."""
    pace = Pace()
    for depth in range(0, 2048, 512):
        pace.record(depth, 512, 512 * (6.4e-3 + 1.1e-6 * (depth + 256)))
    return pace


def test_an_unmeasured_pace_bounds_nothing():
    assert Pace().tokens(8000, CHUNK_SECONDS, 512) == 512
    assert Pace().seconds(8000, 512) == 0.0


def test_a_gpus_chunks_of_2048_that_take_milliseconds_stay_whole():
    pace = Pace()
    for depth in range(0, 8192, 2048):
        pace.record(depth, 2048, 0.004 + 1e-7 * depth)
    assert pace.tokens(8192, CHUNK_SECONDS, 2048) == 2048


def test_a_chunk_shrinks_with_depth_to_what_its_seconds_hold_in_whole_blocks():
    pace = cpu_pace()
    shallow, deep = pace.tokens(2048, CHUNK_SECONDS, 512), pace.tokens(9000, CHUNK_SECONDS, 512)
    assert 0 < deep < shallow <= 512 and shallow % BLOCK == deep % BLOCK == 0
    assert pace.seconds(9000, deep) <= CHUNK_SECONDS < pace.seconds(9000, deep + BLOCK)
    # The depth's cost is the line through the chunks timed, not the last chunk's alone.
    assert pace.per_token(9000) == pytest.approx(6.4e-3 + 1.1e-6 * 9000, rel=0.01)


def test_the_latest_chunk_sets_the_level_a_load_that_doubles_halves_the_chunk():
    pace = cpu_pace()
    quiet = pace.tokens(2048, CHUNK_SECONDS, 512)
    pace.record(2048, quiet, 2 * pace.seconds(2048, quiet))
    assert pace.tokens(2048 + quiet, CHUNK_SECONDS, 512) <= quiet // 2 + BLOCK


def test_a_shallower_prompt_after_a_deep_one_is_not_expected_cheaper_than_any_chunk_timed():
    pace = cpu_pace()
    pace.record(9000, 256, 256 * 16e-3)  # a deep chunk at a higher load: the line would say ~0 at 0
    assert pace.per_token(0) >= min(y for _, y in pace.points)


def test_seconds_spent_leave_no_room_for_a_block():
    assert cpu_pace().tokens(9000, 0.0, 512) == 0


def test_seconds_without_end_bound_nothing():
    assert cpu_pace().tokens(9000, float("inf"), 512) == 512
