"""A choice's drafts verified from the logits of the step that computed them (issue #41).

The step decoded the choice's token at position P and its drafts d1..dk at P+1..P+k, each
with its logits: the logits at P give the token at P+1, those at d1's position the token
after it, and so on. The sampler draws each in turn as it would have without drafts
(``Sampler.verify``: greedy takes the argmax, sampling follows speculative sampling's rule);
while the token drawn is the draft, the draft's KV is already right and the next logits are
already computed. The first token that differs is the answer's next token (decoded in the
next step, like any sampled token), and the KV of the drafts after the last one taken is
removed from the sequence. All taken: the logits of the last draft give one more token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import llama_cpp

from .requests import Choice, Request

if TYPE_CHECKING:
    from .batching import Engine


def verify(engine: Engine, request: Request, choice: Choice) -> int:
    """Hand out the tokens of ``choice``'s verified drafts; how many of them were taken."""
    logits_index, taken = choice.logits_index, 0
    drafted, choice.drafted = choice.drafted, []
    for batch_index, draft in drafted:
        token = choice.sampler.verify(engine.ctx, logits_index, draft)
        going = engine.answers.take(request, choice, token, logits_index)
        if token != draft:
            break
        taken += 1
        if not going:
            break
        logits_index = batch_index
    else:
        token = choice.sampler.sample(engine.ctx, logits_index)
        engine.answers.take(request, choice, token, logits_index)
    # The positions up to the last draft taken hold the answer; the rest go.
    keep = choice.n_past + taken
    llama_cpp.llama_memory_seq_rm(engine.memory, choice.seq_id, keep, -1)
    del engine.held[choice.seq_id].tokens[keep:]
    choice.n_past = keep
    choice.draft.verified(len(drafted), taken)
    return taken
