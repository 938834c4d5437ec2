"""A choice's drafts verified from the logits of the step that computed them (issue #41).

The step decoded the choice's token at position P and its drafts d1..dk at P+1..P+k, each
with its logits: the logits at P give the token at P+1, those at d1's position the token
after it, and so on. The sampler draws each in turn as it would have without drafts
(``Sampler.verify``: greedy takes the argmax, sampling follows speculative sampling's rule);
while the token drawn is the draft, the draft's KV is already right and the next logits are
already computed. The first token that differs is the answer's next token (decoded in the
next step, like any sampled token), and the KV of the drafts after the last one taken is
removed from the sequence. All taken: the logits of the last draft give one more token.

Greedy answers. Where the device computes the verification's rows bit for bit as rows alone
(``StepCosts.exact``: measured at the start under ``prediction_exact``, exactness.py), the
argmax of each row is the plain answer's token and nothing more is needed. Elsewhere rows
computed together may round otherwise (a GPU: kernels of another reduction order past 8
rows), so a greedy choice takes nothing from a row whose two best logits are within
``NEAR_TIE``: that row is decoded again alone in the next step (no drafts in it), and
decides there. That keeps the drafted rows' own choices; the KV they leave still moves the
logits of later rows a little, so without exactness a greedy answer may differ from the
plain one at a later near tie (docs/SCALING.md has the agreement measured).

The host's share. A GPU decodes 17 rows of SmolLM2 in 1.65 one-row steps (1.0 ms a step on
an H200), so what the host does per row decides the speed: a greedy choice whose chain is
the argmax alone (no bias, penalty or grammar) reads its token and the margin from the row
itself, one argmax and two maxima (~30 us on these cores), not llama.cpp's sampler (a 49k
candidates array a row) nor a partition of the row (~800 us here, loaded: it was what made
drafts slower than plain decoding on the H200).
"""

from __future__ import annotations

from typing import Any, Protocol

import llama_cpp
import numpy as np

from .prefixes import Holding
from .prompts import Tokenizer
from .requests import Choice, Request
from .sampling import SamplingParams, logits_at

NEAR_TIE = 0.5  # logits: where rows computed together may round a choice otherwise


class Answers(Protocol):
    def take(self, request: Request, choice: Choice, token: int, logits_index: int) -> bool: ...


class Engine(Protocol):
    """What verification reads of the engine (the executor), named here so the engine
    imports this module and not the other way round."""

    ctx: Any
    memory: Any
    tokenizer: Tokenizer
    held: list[Holding]

    @property
    def answers(self) -> Answers: ...  # read only: any object that takes tokens so


def argmax_alone(sampling: SamplingParams) -> bool:
    """Whether a greedy chain picks the raw logits' argmax (llama.cpp's greedy sampler keeps
    the first of equal logits, as ``numpy.argmax`` does)."""
    return not (sampling.logit_bias or sampling.grammar or sampling.presence_penalty
                or sampling.frequency_penalty or sampling.repeat_penalty != 1.0)


def margin(logits: np.ndarray, best: int) -> float:
    """How far the best logit is above the second."""
    second = max(logits[:best].max(initial=-np.inf), logits[best + 1 :].max(initial=-np.inf))
    return float(logits[best] - second)


def verify(engine: Engine, request: Request, choice: Choice) -> int:
    """Hand out the tokens of ``choice``'s verified drafts; how many of them were taken."""
    drafted, choice.drafted, source = choice.drafted, [], choice.draft
    assert source is not None  # only a choice with a source of drafts has drafted
    greedy = choice.sampler.rng is None
    rows = [choice.logits_index] + [index for index, _ in drafted]  # each gives the next token
    guarded = greedy and not source.costs.exact(len(rows))
    read = greedy and argmax_alone(request.sampling)
    taken, again, best = 0, False, -1
    for row, draft in zip(rows, [token for _, token in drafted] + [None]):
        if greedy:
            logits = logits_at(engine.ctx, row, engine.tokenizer.n_vocab)
            best = int(logits.argmax())
            if guarded and margin(logits, best) < NEAR_TIE:
                again = True
                break
        if draft is None:  # every draft taken: one more token
            engine.answers.take(request, choice, best if read else choice.sampler.sample(engine.ctx, row), row)
            break
        token = best if read else choice.sampler.verify(engine.ctx, row, draft)
        going = engine.answers.take(request, choice, token, row)
        taken += token == draft
        if token != draft or not going:
            break
    # The positions up to the last draft taken hold the answer; the rest go. A row to decide
    # alone goes too, and its token is the next one decoded.
    keep = choice.n_past + taken - again
    held = engine.held[choice.seq_id].tokens
    if again:
        choice.next_token = held[keep]
        source.alone = True
    llama_cpp.llama_memory_seq_rm(engine.memory, choice.seq_id, keep, -1)
    del held[keep:]
    choice.n_past = keep
    source.verified(len(drafted), taken, again)
    return taken
