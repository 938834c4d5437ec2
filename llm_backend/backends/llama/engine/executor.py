"""The executor: a step's batch built, ``llama_decode`` run, and the next tokens sampled.

What it does between two decodes is what the device waits for, so it is only what the next
decode needs: each generating choice's token (the plain greedy rows of a step in one argmax,
the others through llama.cpp's sampler chain, one call a row: sampling.py; the step's host
work outside llama_decode went from 133-138 to 57-66 us a token, 8 streams on these cores),
and what that token decides at once: a thinking budget's
next token, a draft source's cursor, the end of generation or of the length, the logprobs
(the logits are overwritten by the next decode). The token's text, its stop strings and the
events are the output stage's (answers.py), which the engine runs beside the next decode
(batching.py); a choice with drafts is the exception: its text is pushed as each draft is
taken, since whether verification goes on depends on its stop strings (verification.py).

A choice the output stage ended (a stop string) while the decode running held its token
(the overlapped order): that row's logits are not sampled, and its KV cell is removed
(``_undo``), so the sequence holds what it would have held without the overlap; the row
itself was the cost, one a stop string (TensorRT-LLM's overlap scheduler pays the same step).

Each decode is timed from its launch to its logits (``StepCosts.record``: drafts are sized by
what a step of so many rows costs here, drafts.py): on a GPU that wait is the device's step,
or the host's work beside it when that is longer; either is what the step cost. A prompt
chunk's time goes to the scheduler's ``Pace`` too, by the depth it was computed at (chunks
are sized by it: scheduler.py).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Iterable
from typing import Any

import llama_cpp

from .answers import Answers, Taken
from .drafts import StepCosts
from .media import Media
from .prefixes import Holding
from .prompts import Tokenizer
from .requests import Choice, Request
from .sampling import argmax_rows, logprob_entry
from .scheduler import Pace
from .verification import verify


class _Taking:
    """What verification.py calls ``answers``: each of a draft's tokens taken and its text
    pushed at once; verification goes on while the answer does."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def take(self, request: Request, choice: Choice, token: int, logits_index: int) -> bool:
        return self.executor.take(request, choice, token, logits_index)


class Executor:
    """One llama_batch and the context it is decoded in. ``held``: what each sequence's KV
    holds, the admission's list (admission.py), kept as tokens go into a batch."""

    def __init__(
        self, ctx: Any, tokenizer: Tokenizer, held: list[Holding], output: Answers, n_ctx: int, size: int,
        totals: dict[str, int], costs: StepCosts | None = None, pace: Pace | None = None, media: Media | None = None,
    ) -> None:
        self.ctx = ctx
        self.costs = costs
        self.pace = pace
        self.launched: tuple[float, int] | None = None  # the last decode's start and rows, until timed
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.tokenizer = tokenizer
        self.held = held
        self.output = output
        self.answers = _Taking(self)  # for verification.py
        self.n_ctx = n_ctx
        self.batch = llama_cpp.llama_batch_init(size, 0, 1)
        self.size = size
        self.media = media  # a vision model's projector: its spans' rows (media.py)
        self.rows_batch: Any = None  # a batch of embeddings, made at the first image
        self.totals = totals
        self.taken_now: list[Taken] = []  # what the last ``sample`` took
        self.decodes = self.rows = self.undone = 0  # since the start: llama_decode calls, rows, rows dropped

    def fill(self, generating: list[tuple[Request, Choice]], budget: int) -> int:
        """The batch of a step's generating choices (in the order given): one token each,
        and its drafts beside it within ``budget`` rows; how many rows it holds."""
        self.batch.n_tokens = 0
        for position, (request, choice) in enumerate(generating):
            assert choice.next_token is not None  # a generating choice has its next token
            choice.logits_index = self._add(choice.next_token, choice.n_past, choice.seq_id, True)
            choice.n_past += 1
            choice.next_token = None
            if choice.draft is not None:
                # Room for every later sequence's token, within the context and the output
                # reserved (max_tokens, or a share of the pool: admission.py).
                room = min(
                    budget - self.batch.n_tokens - (len(generating) - position - 1),
                    self.n_ctx - 1 - choice.n_past,
                    (request.room or self.n_ctx) - choice.completion_tokens - 1,
                )
                for offset, token in enumerate(choice.draft.propose(room, len(generating) - 1)):
                    choice.drafted.append((self._add(token, choice.n_past + offset, choice.seq_id, True), token))
        return self.batch.n_tokens

    def prefill(self, request: Request, end: int) -> int:
        """The batch of ``request``'s prompt up to ``end``, decoded; the row of its last token."""
        span = request.span_at(request.fed)
        if span is not None:
            return self._prefill_rows(request, end, span)
        self.batch.n_tokens = 0
        first = request.choices[0]
        scoring = request.prompt_logprobs is not None
        index = -1
        for pos in range(request.fed, end):
            last = pos == len(request.prompt) - 1
            index = self._add(request.prompt[pos], pos, first.seq_id, last or scoring)
            if scoring and not last:
                request.scored.append((index, request.prompt[pos + 1]))
        request.fed = first.n_past = end
        self.launch()
        return index

    def _prefill_rows(self, request: Request, end: int, span: Any) -> int:
        """An image span's rows from ``request.fed`` to ``end`` (within the span: the
        scheduler cuts there), decoded as embeddings (media.py); the row of the prompt's last
        position if it is among them, else -1."""
        assert self.media is not None and end <= span.end  # spans come only with a projector
        if self.rows_batch is None:
            self.rows_batch = llama_cpp.llama_batch_init(self.size, self.media.n_embd, 1)
        batch, first, row = self.rows_batch, request.choices[0], self.media.n_embd * ctypes.sizeof(ctypes.c_float)
        rows = self.media.rows(span)
        ctypes.memmove(batch.embd, ctypes.addressof(rows) + (request.fed - span.start) * row, (end - request.fed) * row)
        index = -1
        for i, pos in enumerate(range(request.fed, end)):
            last = pos == len(request.prompt) - 1
            batch.pos[i], batch.n_seq_id[i], batch.logits[i] = pos, 1, last
            batch.seq_id[i][0] = first.seq_id
            self.held[first.seq_id].tokens.append(request.prompt[pos])
            index = i if last else index
        batch.n_tokens = end - request.fed
        request.fed = first.n_past = end
        if span.whole:  # its rows attend to each other both ways; read as the graph is built
            llama_cpp.llama_set_causal_attn(self.ctx, False)
        try:
            self.launch(batch)
        finally:
            if span.whole:
                llama_cpp.llama_set_causal_attn(self.ctx, True)
        return index

    def launch(self, batch: Any = None) -> None:
        """``llama_decode`` of the batch (the step's, or an image's rows): it returns once
        the device has it, before the logits are computed on a GPU (reading them waits:
        ``sample``)."""
        batch = self.batch if batch is None else batch
        self.launched = (time.perf_counter(), batch.n_tokens)
        code = llama_cpp.llama_decode(self.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        self.decodes += 1
        self.rows += batch.n_tokens

    def _timed(self) -> None:
        """Once the last decode's logits are there: its time by its rows, for the drafts."""
        if self.costs is None or self.launched is None:
            return
        llama_cpp.llama_synchronize(self.ctx)
        start, rows = self.launched
        self.launched = None
        self.costs.record(rows, time.perf_counter() - start)

    def prefilled(self, request: Request, end: int, index: int) -> list[Taken]:
        """After a prompt chunk's decode, once the device is done (what comes after a decode
        touches the KV: the disk's copy, copies, admissions): its prompt logprobs; at the
        prompt's end, the first token of each of its choices (all from the last row's logits)."""
        llama_cpp.llama_synchronize(self.ctx)
        if self.pace is not None and self.launched is not None:
            start, rows = self.launched
            self.pace.record(end - rows, rows, time.perf_counter() - start)  # the chunk's rows end at ``end``
        for row, token in request.scored:
            assert request.prompt_logprobs is not None  # rows are scored only for echoed logprobs
            request.prompt_logprobs.append(logprob_entry(self.ctx, self.tokenizer, row, token, request.sampling.top_logprobs))
        request.scored.clear()
        if end < len(request.prompt):
            return []
        for choice in request.choices:
            choice.logits_index, choice.n_past = index, end
        return self.sample([request])

    def sample(self, requests: Iterable[Request]) -> list[Taken]:
        """The next token of each choice of ``requests`` with logits just decoded (reading
        them waits for the device): the rows of plain greedy choices in one argmax, the
        others through their chains, one call a row (sampling.py)."""
        requests, self.taken_now = list(requests), []
        self._timed()
        plain = {
            choice.logits_index for request in requests if request.max_tokens != 0 for choice in request.choices
            if choice.logits_index >= 0 and not choice.finished and not choice.drafted and choice.sampler.argmax
        }
        argmax = dict(zip(plain, argmax_rows(self.ctx, list(plain), self.tokenizer.n_vocab))) if plain else {}
        for request in requests:
            for choice in request.choices:
                if choice.logits_index < 0:
                    continue
                if choice.finished:
                    self._undo(choice)  # ended by a stop string while this decode held its token
                elif choice.drafted:
                    self.totals["drafted_tokens"] += len(choice.drafted)
                    self.totals["accepted_drafts"] += verify(self, request, choice)
                elif request.max_tokens == 0:
                    # Completions' max_tokens 0: the prompt is only echoed or scored.
                    choice.finished = True
                    self.taken_now.append(Taken(request, choice, None, end="length"))
                else:
                    row = choice.logits_index
                    self.take(request, choice, argmax[row] if row in argmax else choice.sampler.sample(self.ctx, row), row)
                choice.logits_index = -1
        return self.taken_now

    def take(self, request: Request, choice: Choice, token: int, logits_index: int) -> bool:
        """``token`` sampled for ``choice`` from the logits at ``logits_index``: what it
        decides for the next step (``choice.next_token``, ``finished``), recorded for the
        output stage (a choice with drafts: its text pushed now); True while it goes on."""
        if choice.thinking is not None:
            token = choice.thinking.token(token)  # past its budget: the closing text (thinking.py)
        if choice.draft is not None:
            choice.draft.follow(token)
        item = Taken(request, choice, token, pushed=choice.draft is not None)
        self.taken_now.append(item)
        if self.tokenizer.is_eog(token):
            item.end, choice.finished = "eog", True
        else:
            if request.sampling.logprobs:
                entry = logprob_entry(self.ctx, self.tokenizer, logits_index, token, request.sampling.top_logprobs)
                choice.held_logprobs.append(entry)
            choice.completion_tokens += 1
            if choice.thinking is not None:
                item.piece = self.tokenizer.piece(token)
                choice.thinking.saw(item.piece.decode("utf-8", errors="ignore"))
            limit = request.max_tokens or self.n_ctx
            if choice.completion_tokens >= limit or len(request.prompt) + choice.completion_tokens >= self.n_ctx:
                item.end, choice.finished = "length", True
            else:
                choice.next_token = token
        return self.output.push(item) if item.pushed else not choice.finished

    def _undo(self, choice: Choice) -> None:
        keep = choice.n_past - 1
        llama_cpp.llama_memory_seq_rm(self.memory, choice.seq_id, keep, -1)
        del self.held[choice.seq_id].tokens[keep:]
        choice.n_past = keep
        self.undone += 1

    def _add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        batch, i = self.batch, self.batch.n_tokens
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq_id
        batch.logits[i] = logits
        batch.n_tokens = i + 1
        self.held[seq_id].tokens.append(token)
        return i

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)
        if self.rows_batch is not None:
            llama_cpp.llama_batch_free(self.rows_batch)
