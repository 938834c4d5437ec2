"""Continuous batching: every running sequence advances by one token per ``llama_decode``.

The engine owns one llama context with ``parallel`` sequence ids sharing one pool of KV
cells (llama.cpp's unified cache, issue #49): a sequence may be as long as the model's window
while the others are short, so one long agent turn and several short chats fit together. A
sequence still attends only to its own cells (the mask), and a request is admitted only when
its prompt and its output room fit in what the running ones leave (admission.py). Each step builds one batch: first one token for
every sequence that is generating (in sequence-id order, see ``step``), then prompt tokens
of newly admitted requests up to ``n_batch`` (long prompts are prefilled in chunks over
several steps, so running streams keep flowing). New requests join between steps; a
cancelled one leaves between steps and its KV cells are freed at once.

A request with ``n`` choices prefills its prompt once on its first sequence, copies that
KV to its other sequences, and samples each choice with its own chain (seed + index).

Prefill once (issue #34): a request is admitted to the sequence holding the most of its
prompt, and takes its prompt's beginning from wherever it is held (admission.py).

Drafts (issue #41): a choice with a source of drafts (the client's prediction, or its
prompt: drafts.py) puts its drafted tokens in the step beside its own token, each with its
logits, and ``verification.py`` takes the longest part the model agrees with: several
tokens for one step.

Requests come in through ``submission.py`` (validated, tokenized, queued) and are placed on
sequences by ``admission.py``: the ``Engine`` is those two parts and this step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import llama_cpp
from llama_cpp import _internals

from .admission import SAVE_MIN, SHARE_MIN
from .answers import Answers, Emit
from .llama_params import context_params, model_params, windows
from .prefix_disk import disk_prefixes
from .prefixes import BLOCK, Holding, HostCache
from .prompt_tokens import PromptTokens
from .prompts import ChatTemplate, Tokenizer
from .requests import Choice, Request
from .submission import Submission
from .verification import verify

__all__ = ["Engine", "SAVE_MIN", "SHARE_MIN"]


class Engine(Submission):
    """The scheduler of one worker process. Not thread-safe: one thread calls it."""

    def __init__(self, config: dict[str, Any], emit: Emit, flush: Callable[[], None] = lambda: None) -> None:
        self.emit = emit
        self.flush = flush  # sends what was emitted: after each decode, not only after the step
        self.parallel = int(config.get("parallel", 4))
        self.n_batch = int(config.get("n_batch", 512))
        n_threads = int(config.get("n_threads") or 1)
        n_threads_batch = int(config.get("n_threads_batch") or n_threads)
        self.model = _internals.LlamaModel(path_model=config["path"], params=model_params(config), verbose=False)
        params = context_params(config)  # the model's own settings (GPU, KV types); the rest here
        # One pool of KV cells for every sequence (the module's docstring); the window, the
        # longest a sequence may grow, is ours to keep (admission.py, answers.py).
        # Not shared (``kv_shared: false``): llama.cpp splits the cells evenly between the
        # sequences, and a sequence's cells lie in position order, so what it computes is the
        # same bits whoever runs beside it; shared, where its cells lie depends on the others'
        # (llama.cpp fills the holes they leave), and greedy answers may differ in the last bits.
        window, pool = windows(self.model, config, self.parallel)
        self.shared_pool = bool(config.get("kv_shared", False))
        params.n_ctx = pool
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = self.parallel
        params.n_threads, params.n_threads_batch = n_threads, n_threads_batch
        params.kv_unified = self.shared_pool
        self.context = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.pool = llama_cpp.llama_n_ctx(self.ctx)  # llama.cpp may round it up
        self.n_ctx = min(window, llama_cpp.llama_n_ctx_seq(self.ctx))
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.tokenizer = Tokenizer(self.model)
        self.prompt_tokens = PromptTokens(self.tokenizer)  # a tenant's recent prompts' tokens, reused
        self.template = ChatTemplate.of_model(
            self.model, config.get("chat_format"), config.get("chat_template"), config.get("tool_format"), self.tokenizer
        )
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.model.vocab))
        self.free_seqs = list(range(self.parallel))
        self.held = [Holding() for _ in range(self.parallel)]  # what each sequence's KV holds
        # Sharing prefixes between sequences, and the host-memory cache behind them.
        self.sharing = bool(config.get("prefix_sharing", True))
        # Reuse limited to what leaves an answer's bits as computed from nothing (prefixes.py).
        self.exact_reuse = bool(config.get("exact_reuse", True))
        self.host = HostCache(int(config.get("prefix_cache_mb", 0)) << 20 if self.sharing else 0)
        # And on disk (prefix_disk.py): a client's instructions and tools, for its next sessions.
        self.disk = disk_prefixes(config)
        self.keeping: list[tuple[int, Holding]] = []  # first parts for the disk, after the step (admission.py)
        self.pending: set[int] = set()  # sequences a queued copy reads or writes (done at the next decode)
        self.waiting: deque[Request] = deque()
        self.running: dict[str, Request] = {}
        # Since the worker started, reported in its ``stats`` events (worker.py).
        self.totals = {
            "requests": 0, "prompt_tokens": 0, "reused_tokens": 0, "cache_hits": 0, "generated_tokens": 0,
            "copied_tokens": 0, "restored_tokens": 0, "disk_tokens": 0, "drafted_tokens": 0, "accepted_drafts": 0,
            "pool_stops": 0,  # requests ended with ``length`` for want of cells (admission.py)
        }
        self.answers = Answers(emit, self.tokenizer, self.ctx, self.n_ctx)
        # Drafts from the request's own prompt (drafts.py): off unless the model enables them.
        self.prompt_lookup = bool(config.get("prompt_lookup", False))

    # --- requests in and out ---

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def cancel(self, rid: str) -> bool:
        """Drop a request wherever it is; frees its sequences. True if it was known."""
        for request in self.waiting:
            if request.rid == rid:
                self.waiting.remove(request)
                self._close(request)
                return True
        request = self.running.pop(rid, None)
        if request is None:
            return False
        self._release(request)
        return True

    def fail_all(self, error: dict[str, Any]) -> None:
        """After a failed decode: fail every request and forget every cached prompt."""
        for request in list(self.running.values()) + list(self.waiting):
            self.emit({"id": request.rid, "event": "error", "error": error})
            self.emit({"id": request.rid, "event": "done"})
            self.cancel(request.rid)
        self.forget()

    def forget(self) -> None:
        """Empty every sequence's KV (the host cache keeps what it saved: it is whole)."""
        llama_cpp.llama_memory_clear(self.memory, True)
        self.held = [Holding() for _ in range(self.parallel)]
        self.pending.clear()

    def _release(self, request: Request) -> None:
        for choice in request.choices:
            if choice.seq_id >= 0:
                # The KV stays for a later prompt with the same beginning.
                self.free_seqs.append(choice.seq_id)
                choice.seq_id = -1
        self._close(request)
        self._admit()

    @staticmethod
    def _close(request: Request) -> None:
        for choice in request.choices:
            choice.sampler.close()

    # --- one decoding step ---

    def step(self) -> None:
        """Decode one step for all running requests and hand out what it produced: a token for
        every generating sequence in one ``llama_decode``, then each prompt chunk in one of
        its own. llama.cpp splits a batch of sequences with unequal token counts into
        micro-batches cut at the shortest one's count, so a prompt chunk decoded beside
        others would be cut where its neighbours end, into chunks of another kind
        (prefixes.py): decoded alone, a chunk is computed the same whoever runs beside it."""
        for request in list(self.running.values()):
            if request.awaits is not None:
                self._resume(request)
            elif request.reading is not None:
                self._read_in(request)
        self._squeeze()  # cells for every token of the step (admission.py)
        # In sequence-id order: llama.cpp reuses the previous step's compute graph only for a
        # batch in that order. Requests that started one after another hold their ids in any
        # order, and then every step rebuilt the graph: 8 streams decoded at 0.64x the
        # in-process ceiling instead of 1.10x (`make bench`, issue #27, docs/MODELS.md).
        generating = sorted(
            ((request, choice) for request in self.running.values() for choice in request.choices
             if choice.next_token is not None and not choice.finished),
            key=lambda pair: pair[1].seq_id,
        )
        self.batch.n_tokens = 0
        for position, (request, choice) in enumerate(generating):
            choice.logits_index = self._add(choice.next_token, choice.n_past, choice.seq_id, True)
            choice.n_past += 1
            choice.next_token = None
            if choice.draft is not None:
                # Room for every later sequence's token, within the context and the output
                # reserved (max_tokens, or a share of the pool: admission.py).
                room = min(
                    self.n_batch - self.batch.n_tokens - (len(generating) - position - 1),
                    self.n_ctx - 1 - choice.n_past,
                    (request.room or self.n_ctx) - choice.completion_tokens - 1,
                )
                for offset, token in enumerate(choice.draft.propose(room, len(generating) - 1)):
                    choice.drafted.append((self._add(token, choice.n_past + offset, choice.seq_id, True), token))
        chunks: list[tuple[Request, int]] = []
        room = self.n_batch - self.batch.n_tokens
        # The shortest prompt left first: a chat beside an agent's 6k-token prompt is answered
        # while that prompt is computed, not after it (issue #49).
        for request in sorted(self.running.values(), key=lambda request: len(request.prompt) - request.fed):
            if room <= 0:
                break
            if request.fed == len(request.prompt) or request.awaits is not None or request.reading is not None:
                continue
            end = self._chunk_end(request, room)
            if end > request.fed:
                chunks.append((request, end))
                room -= end - request.fed
        if generating:
            self._decode()
            self._hand_out({request.rid: request for request, _ in generating}.values())
            self.flush()  # the streams' tokens go before the prompts of this step are computed
        for request, end in chunks:
            if request.rid in self.running:
                self._prefill(request, end)
                self.flush()
        if self.keeping:
            self._kept()
        if not generating and not chunks:
            self._wait_for_reads()

    def _prefill(self, request: Request, end: int) -> None:
        """Decode ``request``'s prompt up to ``end``; at its end, start its choices."""
        self.batch.n_tokens = 0
        first = request.choices[0]
        scoring = request.prompt_logprobs is not None
        for pos in range(request.fed, end):
            last = pos == len(request.prompt) - 1
            index = self._add(request.prompt[pos], pos, first.seq_id, last or scoring)
            if scoring and not last:
                request.scored.append((index, request.prompt[pos + 1]))
        request.fed = first.n_past = end
        self._decode()
        for index, token in request.scored:
            request.prompt_logprobs.append(self.answers.logprob_entry(index, token, request.sampling.top_logprobs))
        request.scored.clear()
        self._keep_on_disk(request, end)
        if end < len(request.prompt):
            return
        if request.echo is not None:
            self.emit({"id": request.rid, "event": "echo", "text": request.echo, "logprobs": request.prompt_logprobs})
        for choice in request.choices:
            choice.logits_index, choice.n_past = index, end
        for choice in request.choices[1:]:
            self._copy(first.seq_id, choice.seq_id, len(request.prompt))
        self._hand_out([request])

    def _decode(self) -> None:
        code = llama_cpp.llama_decode(self.ctx, self.batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        self.pending.clear()  # the queued copies were made before the batch was placed

    def _hand_out(self, requests: Iterable[Request]) -> None:
        """Sample the next token of each choice of ``requests`` with logits just decoded; a
        request whose choices have all finished is complete."""
        for request in list(requests):
            for choice in request.choices:
                if choice.logits_index >= 0 and not choice.finished:
                    if choice.drafted:
                        self.totals["drafted_tokens"] += len(choice.drafted)
                        self.totals["accepted_drafts"] += verify(self, request, choice)
                    else:
                        self._sample(request, choice)
                    self.answers.send(request, choice)
                    choice.logits_index = -1
            if all(choice.finished for choice in request.choices):
                self._complete(request)

    def _chunk_end(self, request: Request, room: int) -> int:
        """Where this step's chunk of the prompt ends: within one canonical part (prefixes.py),
        never leaving less than ``BLOCK`` of the part to a later chunk, and not at all when
        the room left in the step would make a short chunk of a longer part. With an
        ``n_batch`` under a block, as far as there is room."""
        fed = request.fed
        if not self.exact_reuse:
            # Any chunks; cut only where a session's start is kept on disk (``_keep_on_disk``).
            end = min(len(request.prompt), fed + room)
            return request.split if fed < request.split < end and self._first_part_to_disk(request) else end
        part_end = request.split if fed < request.split else len(request.prompt)
        end = min(part_end, fed + room)
        if end == part_end or self.n_batch < BLOCK:
            return end
        if part_end - end < BLOCK:
            end = part_end - BLOCK
        return end if end - fed >= BLOCK else fed

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

    def _sample(self, request: Request, choice: Choice) -> None:
        if request.max_tokens == 0:
            # Completions' max_tokens 0: the prompt is only echoed or scored.
            self.answers.finish(request, choice, "", "length")
            return
        token = choice.sampler.sample(self.ctx, choice.logits_index)
        self.answers.take(request, choice, token, choice.logits_index)

    def stats(self) -> dict[str, int]:
        """What the engine is doing now, and its totals (see ``totals``)."""
        return {
            "decoding": sum(len(request.choices) for request in self.running.values()),
            "waiting": len(self.waiting),
            "running": len(self.running),
            "kv_used": sum(len(held.tokens) for held in self.held),
            # The cells of sequences serving a request: what a kept prompt holds can be given
            # up for a new one, so it is left out (vLLM's KV usage leaves out its cached blocks).
            "kv_active": sum(len(self.held[seq].tokens) for seq in set(range(self.parallel)).difference(self.free_seqs)),
            "kv_size": self.pool,
            **self.totals,
            **self.host.stats(),
            **(self.disk.stats() if self.disk is not None else {}),
        }

    def _complete(self, request: Request) -> None:
        usage = request.usage()
        totals = self.totals
        totals["requests"] += 1
        totals["prompt_tokens"] += len(request.prompt)
        totals["reused_tokens"] += request.reused
        totals["cache_hits"] += 1 if request.reused else 0
        totals["generated_tokens"] += sum(choice.completion_tokens for choice in request.choices)
        self.emit({"id": request.rid, "event": "usage", **usage})
        del self.running[request.rid]
        self._release(request)
        self.emit({"id": request.rid, "event": "done"})

    def close(self) -> None:
        if self.disk is not None:
            self.disk.close()
        llama_cpp.llama_batch_free(self.batch)
