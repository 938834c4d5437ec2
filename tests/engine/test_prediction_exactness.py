"""Predicted outputs that never change a greedy answer (issue #57): the device's exact rows
probed (engine/exactness.py), and drafts kept within them answer as without a prediction,
on the real default GGUF driven directly."""

from __future__ import annotations

import llama_cpp
import pytest

from llm_backend.backends.llama.engine import drafts
from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.drafts import StepCosts
from llm_backend.backends.llama.engine.exactness import decode, exact_rows
from tests.support.engines import Recorder, recording_engine
from tests.engine.test_predictions import PROMPTS, chat, edited
from tests.support.models import default_gguf


def device_costs(engine: Engine) -> StepCosts:
    """The engine's ``StepCosts``, as its drafts read them (a request with a prediction,
    cancelled before it runs)."""
    engine.submit("costs", "chat", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "prediction": "Hi"})
    request = next(request for request in [*engine.waiting, *engine.running.values()] if request.rid == "costs")
    engine.cancel("costs")
    return request.choices[0].draft.costs


@pytest.fixture(scope="module")
def engine():
    config = {"path": str(default_gguf()), "n_ctx": 1024, "parallel": 2, "n_threads": 1, "prediction_exact": True}
    engine = recording_engine(config)
    engine.exact = device_costs(engine)  # probed at the start (exactness.py), shared by the drafts
    print("exact rows on this device:", engine.exact.exact_rows)
    yield engine
    engine.close()


def answer(engine: Engine, rid: str, params: dict, costs: StepCosts | None = None) -> tuple[str, int, int]:
    """The answer's text, the decoding steps it took and the most drafts one step verified;
    ``costs``: what its drafts read instead of the engine's."""
    engine.submit(rid, "chat", params)
    request = next(request for request in [*engine.waiting, *engine.running.values()] if request.rid == rid)
    for choice in request.choices:
        if choice.draft is not None and costs is not None:
            choice.draft.costs = costs
    steps, longest = 0, 0
    while engine.busy:
        drafted = engine.totals["drafted_tokens"]
        engine.step()
        steps += 1
        longest = max(longest, engine.totals["drafted_tokens"] - drafted)
    return engine.recorder.text(rid), steps, longest


def test_the_probed_size_computes_rows_bitwise_as_alone_elsewhere_too(engine):
    """Another text at another place on another sequence: a chunk of the size probed gives
    each row's logits as decoding the rows one at a time does."""
    size, n_vocab, memory = engine.exact.exact_rows, engine.tokenizer.n_vocab, llama_cpp.llama_get_memory(engine.ctx)
    assert 1 <= size <= drafts.MAX_DRAFT + 1
    tokens = engine.tokenizer.tokenize("Rivers of Europe: the Danube, the Rhine, the Loire. " * 12, add_bos=False)
    start = 100
    try:
        decode(engine.ctx, engine.batch, n_vocab, tokens[:start], 0, 1, logits=False)
        alone = [decode(engine.ctx, engine.batch, n_vocab, [token], start + i, 1)[0] for i, token in enumerate(tokens[start : start + 8])]
        llama_cpp.llama_memory_seq_rm(memory, 1, start, -1)
        together = decode(engine.ctx, engine.batch, n_vocab, tokens[start : start + size], start, 1)
    finally:
        engine.forget()  # what the sequences held is gone: the engine's record of it too
    assert all((row == own).all() for row, own in zip(together, alone))


def test_within_the_exact_rows_greedy_answers_are_the_plain_ones_in_fewer_steps(engine):
    """``prediction_exact``: the answer itself and the answer with a word changed as
    predictions, drafts within the rows the probe found: the plain answers, bit for bit by
    construction (no near-tie rule needed), in fewer steps; no step verified more drafts
    than the exact rows allow."""
    size = engine.exact.exact_rows
    assert size > 1  # these cores, flash attention on: 63
    # The rows probed, with the costs of 2 cores measured once (not this loaded machine's now).
    exact = StepCosts()
    exact.exact_rows = size
    for number in (0, 4, 6):
        plain, steps, _ = answer(engine, f"exact-plain-{number}", chat(PROMPTS[number]))
        for kind, prediction in (("own", plain), ("edited", edited(plain))):
            text, predicted_steps, longest = answer(engine, f"exact-{kind}-{number}", chat(PROMPTS[number], prediction=prediction), exact)
            assert text == plain, (number, kind)
            assert longest <= size - 1
            assert predicted_steps < steps, (number, kind, predicted_steps, steps)


def test_nothing_probed_exact_leaves_a_greedy_choice_no_drafts_and_its_answer(engine):
    """A device that computes no two rows as one alone (the probe's 1): exactness asked for,
    a greedy answer with a prediction is decoded one token a step, as without one."""
    plain, steps, _ = answer(engine, "none-plain", chat(PROMPTS[1]))
    nothing = StepCosts()
    nothing.exact_rows = 1
    text, predicted_steps, longest = answer(engine, "none-own", chat(PROMPTS[1], prediction=plain), nothing)
    assert (text, predicted_steps, longest) == (plain, steps, 0)


def test_the_probe_finds_rows_that_round_otherwise_together():
    """Without flash attention these cores compute even 2 rows together otherwise than alone
    (logits moved by 0.93, measured): the probe says 1, and exactness then means no drafts."""
    engine = Engine({"path": str(default_gguf()), "n_ctx": 1024, "parallel": 1, "n_threads": 1, "flash_attn": False}, Recorder())
    try:
        n_vocab = engine.tokenizer.n_vocab
        tokens = engine.tokenizer.tokenize("Rivers of Europe: the Danube, the Rhine, the Loire. " * 4, add_bos=False)
        decode(engine.ctx, engine.batch, n_vocab, tokens[:40], 0, 0, logits=False)
        alone = [decode(engine.ctx, engine.batch, n_vocab, [token], 40 + i, 0)[0] for i, token in enumerate(tokens[40:42])]
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(engine.ctx), 0, 40, -1)
        together = decode(engine.ctx, engine.batch, n_vocab, tokens[40:42], 40, 0)
        engine.forget()
        differ = any((row != own).any() for row, own in zip(together, alone))
        assert differ  # these cores, flash attention off
        assert exact_rows(engine.ctx, engine.tokenizer, 0, drafts.MAX_DRAFT + 1) == 1
    finally:
        engine.close()


def test_a_context_of_small_batches_is_probed_within_them():
    """``n_batch: 16``: no decode of the context holds more than 16 rows, so neither does the
    probe's, nor any draft after it."""
    engine = Engine({"path": str(default_gguf()), "n_ctx": 1024, "parallel": 1, "n_threads": 1, "n_batch": 16, "prediction_exact": True}, Recorder())
    try:
        assert 1 <= device_costs(engine).exact_rows <= 16
    finally:
        engine.close()


def test_the_engine_times_its_decodes_by_their_rows_for_the_drafts(engine):
    """Drafts are sized by what a decode of so many rows costs on this device (drafts.py):
    each step the executor runs is timed into the engine's ``StepCosts``, the prompt's
    chunk and every generating step."""
    before = engine.exact.timed
    text, steps, _ = answer(engine, "timed-plain", chat(PROMPTS[2]))
    assert text and engine.exact.timed >= before + steps - 1
    assert engine.exact.cost(16) > 0
