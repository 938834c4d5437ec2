"""A choice's drafts verified from the logits of the step that computed them (issue #41).

The step decoded the choice's token at position P and its drafts d1..dk at P+1..P+k, each
with its logits: the logits at P give the token at P+1, those at d1's position the token
after it, and so on. The sampler draws each in turn as it would have without drafts
(``Sampler.verify``: greedy takes the argmax, sampling follows speculative sampling's rule);
while the token drawn is the draft, the draft's KV is already right and the next logits are
already computed. The first token that differs is the answer's next token (decoded in the
next step, like any sampled token), and the KV of the drafts after the last one taken is
removed from the sequence. All taken: the logits of the last draft give one more token.

Greedy answers must not change, but rows computed together round otherwise than a row
decoded alone (docs/SCALING.md): measured here, logits moved by 0.14-0.28, and where the
plain run's two best tokens were 0.005 apart the answer changed at its 188th token. So a
greedy choice takes nothing from a row whose two best logits are within ``NEAR_TIE``: that
row is decoded again alone in the next step (no drafts in it), and decides there.
"""

from __future__ import annotations

from typing import Any, Protocol

import llama_cpp
import numpy as np

from .answers import Answers
from .prefixes import Holding
from .prompts import Tokenizer
from .requests import Choice, Request
from .sampling import logits_at

NEAR_TIE = 0.5  # logits: what rows computed together may move one by (a tie flipped at 0.14)


class Engine(Protocol):
    """What verification reads of the engine (batching.py's ``Engine``), named here so the
    engine imports this module and not the other way round."""

    ctx: Any
    memory: Any
    tokenizer: Tokenizer
    answers: Answers
    held: list[Holding]


def _near_tie(engine: Engine, logits_index: int) -> bool:
    second, best = np.partition(logits_at(engine.ctx, logits_index, engine.tokenizer.n_vocab), -2)[-2:]
    return float(best - second) < NEAR_TIE


def verify(engine: Engine, request: Request, choice: Choice) -> int:
    """Hand out the tokens of ``choice``'s verified drafts; how many of them were taken."""
    drafted, choice.drafted = choice.drafted, []
    greedy = choice.sampler.rng is None
    rows = [choice.logits_index] + [index for index, _ in drafted]  # each gives the next token
    taken, again = 0, False
    for row, draft in zip(rows, [token for _, token in drafted] + [None]):
        if greedy and _near_tie(engine, row):
            again = True
            break
        if draft is None:  # every draft taken: one more token
            engine.answers.take(request, choice, choice.sampler.sample(engine.ctx, row), row)
            break
        token = choice.sampler.verify(engine.ctx, row, draft)
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
        choice.draft.alone = True
    llama_cpp.llama_memory_seq_rm(engine.memory, choice.seq_id, keep, -1)
    del held[keep:]
    choice.n_past = keep
    choice.draft.verified(len(drafted), taken, again)
    return taken
