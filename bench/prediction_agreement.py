"""`bench/predictions.py` row (e): do greedy answers stay the plain ones with a prediction,
and what do the rows of a draft round to on this device (issue #57)?

In-process (the engine driven directly, one stream, the model settings of
``BENCH_MODEL_SETTINGS`` as the GPU check gives them): the probe of engine/exactness.py
(how many rows of one sequence one decode computes bitwise as rows alone) and how far the
logits of the first size past it move (what the near-tie margin, verification.py's 0.5,
must cover where drafts go past it); then over the load generator's 8 prompts and the
engine tests' 8, each answered plain and with two predictions (its own answer: every draft
right; the answer with a word changed in its middle), in two modes:

- ``default``: drafts sized by the costs, the near-tie rule guarding greedy choices;
- ``exact`` (``prediction_exact``): drafts within the probed rows, no near-tie rule.

Each mode: how many answers are identical to the plain one (and where the others first
differ), and the answer's tok/s over the plain one's. The drafts' costs are the engine's
own, as its executor times its decodes; an engine that times none gets this row's timing of
each step (its decode, sampling and verification: a step's wall time by its rows).
"""

from __future__ import annotations

import time

import llama_cpp
import numpy as np
from llama_cpp import _logger

from bench.ceiling import MODEL_SETTINGS
from bench.openai_runs import load_generator
from bench.prefixes import median
from llm_backend.backends.llama.engine import drafts
from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.drafts import StepCosts
from llm_backend.backends.llama.engine.exactness import SIZES, decode, exact_rows
from tests.engine.test_batching import Recorder
from tests.engine.test_prediction_exactness import device_costs
from tests.engine.test_predictions import PROMPTS, edited


def _move(engine: Engine, size: int) -> float:
    """The largest logit move of a chunk of ``size`` rows against the rows alone (first 8)."""
    tokens = engine.tokenizer.tokenize("The quick brown fox jumps over the lazy dog. " * 24, add_bos=False)
    n_vocab, start = engine.tokenizer.n_vocab, 64
    try:
        decode(engine.ctx, engine.batch, n_vocab, tokens[:start], 0, 0, logits=False)
        alone = [decode(engine.ctx, engine.batch, n_vocab, [token], start + i, 0)[0] for i, token in enumerate(tokens[start : start + 8])]
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(engine.ctx), 0, start, -1)
        together = decode(engine.ctx, engine.batch, n_vocab, tokens[start : start + size], start, 0)
        return max(float(np.abs(row - own).max()) for row, own in zip(together, alone))
    finally:
        engine.forget()


class Run:
    """One answer driven step by step: its text, tokens and seconds; ``costs``: where to
    record each decoding step's time by its rows (an engine that records none)."""

    def __init__(self, engine: Engine, rid: str, messages: list[dict], tokens: int, prediction: str | None, costs: StepCosts | None) -> None:
        params = {"messages": messages, "temperature": 0, "max_tokens": tokens}
        engine.submit(rid, "chat", params if prediction is None else {**params, "prediction": prediction})
        request = next(request for request in [*engine.waiting, *engine.running.values()] if request.rid == rid)
        started = time.perf_counter()
        while engine.busy:
            ready = request.fed == len(request.prompt)  # a step of decoding, no prompt in it
            drafted, step = engine.totals["drafted_tokens"], time.perf_counter()
            engine.step()
            if costs is not None and ready:
                costs.record(1 + engine.totals["drafted_tokens"] - drafted, time.perf_counter() - step)
        self.seconds = time.perf_counter() - started
        self.text = engine.recorder.text(rid)
        self.tokens = sum(choice.completion_tokens for choice in request.choices)


def row_e(path: str, tokens: int = 64) -> list[str]:
    from llm_backend.backends.llama.local_model import default_batch_threads, default_threads

    _logger.set_verbose(False)  # llama.cpp's load-time chatter
    recorder = Recorder()
    config = {"path": path, "n_ctx": 2048, "parallel": 2, "n_threads": default_threads(),
              "n_threads_batch": default_batch_threads(), **MODEL_SETTINGS}
    engine = Engine(config, recorder)
    engine.recorder = recorder
    started = time.perf_counter()
    exact = exact_rows(engine.ctx, engine.tokenizer, 0, drafts.MAX_DRAFT + 1)
    probe_s = time.perf_counter() - started
    past = next((size for size in SIZES if size > exact), None)
    moved = f"; {past} rows move a logit by up to {_move(engine, past):.3f}" if past else ""
    lines = [f"(e) exactness: one decode computes up to {exact} rows of a sequence bitwise as rows alone "
             f"(probed in {probe_s * 1000:.0f} ms){moved}"]
    costs = device_costs(engine)
    load = load_generator()
    prompts = [load.build_messages(prompt) for prompt in load.PROMPTS] + [[{"role": "user", "content": prompt}] for prompt in PROMPTS]
    same = {mode: [] for mode in ("default", "exact")}
    speed = {(mode, kind): [] for mode in same for kind in ("own", "edited")}
    Run(engine, "warm-up", prompts[0], tokens, None, None)
    timed = None if costs.timed else costs  # an engine that times no decode: this row does
    for number, messages in enumerate(prompts):
        plain = Run(engine, f"plain-{number}", messages, tokens, None, timed)
        for mode in same:
            costs.exact_rows = exact if mode == "exact" else None  # prediction_exact, or not
            for kind, prediction in (("own", plain.text), ("edited", edited(plain.text))):
                run = Run(engine, f"{mode}-{kind}-{number}", messages, tokens, prediction, timed)
                if run.text != plain.text:
                    same[mode].append(next((i for i, (a, b) in enumerate(zip(run.text, plain.text)) if a != b), len(plain.text)))
                speed[mode, kind].append((run.tokens / run.seconds) / (plain.tokens / plain.seconds))
    costs.exact_rows = None
    answers = 2 * len(prompts)
    for mode, differing in same.items():
        where = f" (first differing at characters {sorted(differing)})" if differing else ""
        lines.append(f"    {mode:8} {answers - len(differing)}/{answers} greedy answers identical to the plain one{where}; "
                     f"tok/s over plain: own answer {median(speed[mode, 'own']):.2f}x, edited {median(speed[mode, 'edited']):.2f}x")
    lines.append(f"    ({len(prompts)} prompts x {tokens} tokens; the drafts' costs: "
                 f"{'this row timing each step' if timed else 'timed by the engine'})")
    engine.close()
    return lines
