"""Continuous batching: every running sequence advances by one token per ``llama_decode``.

The engine owns one llama context with ``parallel`` sequence ids sharing one pool of KV
cells (llama.cpp's unified cache, issue #49): a sequence may be as long as the model's window
while the others are short, so one long agent turn and several short chats fit together. A
sequence still attends only to its own cells (the mask), and a request is admitted only when
its prompt and its output room fit in what the running ones leave (admission.py). New
requests join between steps; a cancelled one leaves between steps and its KV cells are freed
at once. A request with ``n`` choices prefills its prompt once on its first sequence, copies
that KV to its other sequences, and samples each choice with its own chain (seed + index).
Prefill once (issue #34): a request is admitted to the sequence holding the most of its
prompt, and takes its prompt's beginning from wherever it is held (admission.py). Drafts
(issue #41): a choice with a source of drafts (drafts.py) puts its drafted tokens in the step
beside its own token, and ``verification.py`` takes the longest part the model agrees with.

The ``Engine`` is parts, composed here, and the order of a step (issue #57):

- ``Submission`` (submission.py): a request validated, tokenized, its samplers built;
- ``Admission`` (admission.py): which sequence a request gets, what its prompt starts from,
  room in the pool; ``Scheduler`` (scheduler.py): what a step runs, chunk sizes;
- ``Executor`` (executor.py): the batch, ``llama_decode``, sampling;
- ``Answers`` (answers.py): the output stage: text, stop strings, the events, the metering.

A step is one decode of a token for every generating sequence, then one decode of each prompt
chunk alone: llama.cpp splits a batch of sequences with unequal token counts into
micro-batches cut at the shortest one's count, so a prompt chunk decoded beside others would
be cut where its neighbours end, into chunks of another kind (prefixes.py); decoded alone, a
chunk is computed the same whoever runs beside it. After each decode: sample (the executor),
then the output stage of what was sampled, one write of its events to the API process
(``flush``: worker.py), then the requests it completed leave their sequences.

Overlapped (``overlap``: on a GPU, llama_params.py), the output stage of one decode's tokens
runs after the next decode is launched and before its logits are read: llama_decode returns
while the GPU computes (reading the logits waits), so the host's detokenizing, stop strings
and events cost no GPU time; only planning and sampling stay between two decodes. The cost: a
choice a stop string ends was already in the next decode, and that row is wasted (answers.py,
executor.py); the end of generation and the length are known at sampling and cost nothing.
What changes the sequences (admissions, releases, copies, the disk's copy) waits until the
device is done with the decode: only the output stage overlaps it. On the CPU llama_decode
computes in the calling thread, so the order stays the one above.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from typing import Any

import llama_cpp
from llama_cpp import _internals

from .admission import SAVE_MIN, SHARE_MIN, Admission
from .answers import Answers, Emit, Taken
from .drafts import MAX_DRAFT, StepCosts
from .exactness import exact_rows
from .executor import Executor
from .llama_params import batch_sizes, context_params, model_params, offloads, overlaps, windows
from .media import IMAGE_FAILED, Media
from .prompts import ChatTemplate, Tokenizer
from .requests import Request
from .scheduler import Scheduler
from .submission import Submission

__all__ = ["Engine", "SAVE_MIN", "SHARE_MIN"]


class _Of:
    """An attribute of one of the engine's parts, read and set through the engine."""

    def __init__(self, part: str) -> None:
        self.part = part

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, engine: Any, owner: type | None = None) -> Any:
        return self if engine is None else getattr(getattr(engine, self.part), self.name)

    def __set__(self, engine: Any, value: Any) -> None:
        setattr(getattr(engine, self.part), self.name, value)


class Engine:
    """One worker process's engine. Not thread-safe: one thread calls it."""

    def __init__(self, config: dict[str, Any], emit: Emit, flush: Callable[[], None] = lambda: None) -> None:
        self.emit = emit
        self.flush = flush  # sends what was emitted: once a decode (worker.py)
        self.parallel = int(config.get("parallel", 4))
        offloaded = offloads(config)
        n_batch, n_ubatch = batch_sizes(config, offloaded)
        self.overlap = overlaps(config, offloaded)
        n_threads = int(config.get("n_threads") or 1)
        n_threads_batch = int(config.get("n_threads_batch") or n_threads)
        self.model = _internals.LlamaModel(path_model=config["path"], params=model_params(config), verbose=False)
        params = context_params(config)  # the model's own settings (GPU, KV types); the rest here
        # One pool of KV cells for every sequence (the module's docstring); the window, the
        # longest a sequence may grow, is ours to keep (admission.py, executor.py).
        # Not shared (``kv_shared: false``): llama.cpp splits the cells evenly between the
        # sequences, and a sequence's cells lie in position order, so what it computes is the
        # same bits whoever runs beside it; shared, where its cells lie depends on the others'
        # (llama.cpp fills the holes they leave), and greedy answers may differ in the last bits.
        window, pool = windows(self.model, config, self.parallel)
        params.n_ctx = pool
        params.n_batch = params.n_ubatch = max(n_batch, n_ubatch)  # the largest decode: one chunk, or a step's rows
        params.n_seq_max = self.parallel
        params.n_threads, params.n_threads_batch = n_threads, n_threads_batch
        params.kv_unified = bool(config.get("kv_shared", False))
        self.context = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.pool = llama_cpp.llama_n_ctx(self.ctx)  # llama.cpp may round it up
        self.n_ctx = min(window, llama_cpp.llama_n_ctx_seq(self.ctx))
        self.tokenizer = Tokenizer(self.model)
        self.template = ChatTemplate.of_model(
            self.model, config.get("chat_format"), config.get("chat_template"), config.get("tool_format"), self.tokenizer
        )
        # Since the worker started, reported in its ``stats`` events (worker.py).
        self.totals = {
            "requests": 0, "prompt_tokens": 0, "reused_tokens": 0, "cache_hits": 0, "generated_tokens": 0,
            "copied_tokens": 0, "restored_tokens": 0, "disk_tokens": 0, "drafted_tokens": 0, "accepted_drafts": 0,
            "pool_stops": 0,  # requests ended with ``length`` for want of cells (admission.py)
        }
        # What decodes cost here, one for every draft (drafts.py), and with ``prediction_exact``
        # the rows of a sequence this device computes together as alone, probed before any
        # request (exactness.py).
        costs = StepCosts()
        if config.get("prediction_exact"):
            costs.exact_rows = exact_rows(self.ctx, self.tokenizer, 0, MAX_DRAFT + 1)
        # A vision model's projector (media.py): images framed, encoded beside the steps.
        self.media = Media(self.model, config["mmproj"], config, max(n_batch, n_ubatch)) if config.get("mmproj") else None
        self.submission = Submission(
            self.model, self.tokenizer, self.template, self.n_ctx, self.pool, self.parallel, config, costs, self.media
        )
        self.admission = Admission(self.ctx, self.parallel, self.n_ctx, self.pool, config, emit, self.totals)
        self.scheduler = Scheduler(self.admission, n_batch, n_ubatch)
        self.scheduler.media = self.media
        self.answers = Answers(emit, self.tokenizer, self.totals)
        self.executor = Executor(
            self.ctx, self.tokenizer, self.admission.held, self.answers, self.n_ctx, max(n_batch, n_ubatch), self.totals,
            costs, self.scheduler.pace, self.media,
        )
        self.unsent: list[Taken] = []  # sampled, waiting for the output stage

    # --- requests in and out ---

    @property
    def busy(self) -> bool:
        return bool(self.admission.running)

    def submit(self, rid: str, op: str, params: dict[str, Any]) -> None:
        """Validate and queue a chat or completion request (raises RequestError)."""
        self.admission.queue(self.submission.submit(rid, op, params))

    def chat_prompt(self, *args: Any, **kwargs: Any) -> tuple[list[int], list[str], str | None, list[Any]]:
        return self.submission.chat_prompt(*args, **kwargs)

    def cancel(self, rid: str) -> bool:
        """Drop a request wherever it is; frees its sequences. True if it was known."""
        self.unsent = [item for item in self.unsent if item.request.rid != rid]
        return self.admission.cancel(rid) is not None

    def fail_all(self, error: dict[str, Any]) -> None:
        """After a failed decode: fail every request and forget every cached prompt."""
        self.unsent.clear()
        for request in list(self.admission.running.values()) + list(self.admission.waiting):
            if not all(choice.ended for choice in request.choices):  # else its ``done`` is out
                self.emit({"id": request.rid, "event": "error", "error": error})
                self.emit({"id": request.rid, "event": "done"})
            self.cancel(request.rid)
        self.forget()

    def forget(self) -> None:
        """Empty every sequence's KV (the host cache keeps what it saved: it is whole)."""
        self.admission.forget()

    # --- one step ---

    def step(self) -> None:
        """Plan a step, decode it, sample it, and finish what was sampled (the module's
        docstring has the order)."""
        scheduler, executor = self.scheduler, self.executor
        if self.media is not None:
            self._end_unseen()
        scheduler.prepare(self._cut)
        generating = scheduler.generating()
        chunks = scheduler.chunks(executor.fill(generating, scheduler.n_batch))
        if generating:
            executor.launch()
            self._decoded(lambda: executor.sample({request.rid: request for request, _ in generating}.values()))
        for request, end in chunks:
            if request.rid in self.admission.running:
                self._prefill(request, end)
        if not generating and not chunks:
            self._finish(self._output())  # nothing to decode: what was sampled last
            self.admission.wait_for_reads()
            self._wait_for_images()
        if self.admission.keeping:
            self.admission.kept()

    def _prefill(self, request: Request, end: int) -> None:
        """Decode ``request``'s prompt up to ``end``; at its end, start its choices."""
        index = self.executor.prefill(request, end)
        self._decoded(lambda: self._prefilled(request, end, index))

    def _prefilled(self, request: Request, end: int, index: int) -> list[Taken]:
        taken = self.executor.prefilled(request, end, index)
        self.admission.keep_on_disk(request, end)
        if end == len(request.prompt):
            if request.echo is not None:
                self.answers.echo(request)
            first = request.choices[0]
            for choice in request.choices[1:]:
                self.admission.copy(first.seq_id, choice.seq_id, len(request.prompt))
        return taken

    def _decoded(self, collect: Callable[[], Iterable[Taken]]) -> None:
        """A decode launched: the output stage of the last one's tokens beside it (overlap)
        or of its own after ``collect`` samples it; the requests completed leave after both."""
        self.admission.copies_done()  # the copies queued were made before the batch was placed
        completed = self._output() if self.overlap else []
        self.unsent += collect()
        if not self.overlap:
            completed = self._output()
        self._finish(completed)

    def _output(self) -> list[Request]:
        """The output stage of what was sampled, its events in one write."""
        taken, self.unsent = self.unsent, []
        completed = self.answers.finish(taken)
        self.flush()
        return completed

    def _finish(self, completed: list[Request]) -> None:
        for request in completed:
            self.admission.complete(request)

    def _encoding(self) -> list[Any]:
        """The image encodes running requests wait for (media.py)."""
        return [
            span.embeddings for request in self.admission.running.values() for span in request.spans
            if span.embeddings is not None and not span.embeddings.done()
        ]

    def _wait_for_images(self) -> None:
        """A step with nothing to decode while images are encoded: wait a little for them
        rather than spin (a request arriving meanwhile waits at most that)."""
        if self.media is not None and (encoding := self._encoding()):
            concurrent.futures.wait(encoding, timeout=0.05, return_when=concurrent.futures.FIRST_COMPLETED)

    def _end_unseen(self) -> None:
        """Requests an image's encode failed for: their error, and they leave (the others go on)."""
        for request in list(self.admission.running.values()):
            if any(span.embeddings is not None and span.embeddings.done() and span.embeddings.exception() for span in request.spans):
                self.emit({"id": request.rid, "event": "error", "error": IMAGE_FAILED})
                self.emit({"id": request.rid, "event": "done"})
                self.cancel(request.rid)

    def _cut(self, request: Request) -> None:
        """End ``request`` for the pool (admission.py), after what its last tokens said."""
        mine = [item for item in self.unsent if item.request is request]
        self.unsent = [item for item in self.unsent if item.request is not request]
        if request not in self.answers.finish(mine):
            self.answers.cut(request)

    # --- what tests, benches and the worker read and set of the parts ---

    running = _Of("admission")
    waiting = _Of("admission")
    free_seqs = _Of("admission")
    held = _Of("admission")
    host = _Of("admission")
    disk = _Of("admission")
    exact_reuse = _Of("admission")
    n_batch = _Of("scheduler")  # at most what the context was built for
    chunk_seconds = _Of("scheduler")
    add_bos = _Of("submission")
    prompt_tokens = _Of("submission")
    prompt_lookup = _Of("submission")
    batch = _Of("executor")

    def stats(self) -> dict[str, int]:
        """What the engine is doing now, and its totals (see ``totals``)."""
        admission = self.admission
        return {
            "decoding": sum(len(request.choices) for request in admission.running.values()),
            "waiting": len(admission.waiting),
            "running": len(admission.running),
            "kv_used": sum(len(held.tokens) for held in admission.held),
            # The cells of sequences serving a request: what a kept prompt holds can be given
            # up for a new one, so it is left out (vLLM's KV usage leaves out its cached blocks).
            "kv_active": sum(len(admission.held[seq].tokens) for seq in set(range(self.parallel)).difference(admission.free_seqs)),
            "kv_size": self.pool,
            **self.totals,
            **admission.host.stats(),
            **(admission.disk.stats() if admission.disk is not None else {}),
        }

    def close(self) -> None:
        if self.admission.disk is not None:
            self.admission.disk.close()
        if self.media is not None:
            self.media.close()
        self.executor.close()
