"""Continuous batching: every running sequence advances by one token per ``llama_decode``.

The engine owns one llama context with ``parallel`` sequence ids, each with its own KV
cells (a non-unified cache: a sequence attends only to its own cells, so what one request
computes never depends on its neighbours). Each step builds one batch: first one token for
every sequence that is generating (in sequence-id order, see ``step``), then prompt tokens
of newly admitted requests up to ``n_batch`` (long prompts are prefilled in chunks over
several steps, so running streams keep flowing). New requests join between steps; a
cancelled one leaves between steps and its KV cells are freed at once.

A request with ``n`` choices prefills its prompt once on its first sequence, copies that
KV to its other sequences, and samples each choice with its own chain (seed + index).

Prefill once (issue #34, prefixes.py). A sequence keeps its KV cells after its request
ends, and a new request computes only what it cannot find. It goes to a free sequence
holding a conversation it continues (that sequence's last prompt is where this one starts:
the next turn, a retry), else to an empty one, else to the one sharing the longest prefix,
the least recently used among equals; so conversations taking turns each keep their
sequence while one is empty. Then, if it gives at least ``SHARE_MIN`` more tokens, its
prompt's beginning is taken from elsewhere: another sequence's KV (running or idle), copied;
a prefix saved to host memory, restored; or, when another request is computing that
beginning right now (users arriving together with one system prompt), it waits for it and
copies it then. KV about to be overwritten is saved to host memory first (``HostCache``).
All of this only within a tenant, or within what both declare shared (prefixes.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
from llama_cpp import _internals

from .errors import ContextError, RequestError
from .llama_params import context_params, model_params
from .prefixes import BLOCK, Holding, HostCache, common_prefix
from .prompts import ChatTemplate, Tokenizer
from .sampling import Sampler, SamplingParams, logits_at, token_logprobs
from .text import TextStream

Emit = Callable[[dict[str, Any]], None]

# A prefix found elsewhere is taken when it gives this many more tokens than the chosen
# sequence holds: copying one costs a few ms, computing 32 tokens ~100 ms on 2 cores.
SHARE_MIN = 32
# A sequence about to lose this many cached tokens is saved to host memory first.
SAVE_MIN = 64


@dataclass
class Choice:
    index: int
    seq_id: int
    sampler: Sampler
    text: TextStream
    n_past: int = 0
    next_token: int | None = None
    logits_index: int = -1
    completion_tokens: int = 0
    held_logprobs: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


@dataclass
class Request:
    rid: str
    prompt: list[int]
    n: int
    max_tokens: int | None
    sampling: SamplingParams
    stop: list[str]
    choices: list[Choice] = field(default_factory=list)
    fed: int = 0  # prompt tokens already in the KV cache
    reused: int = 0  # of those, tokens found cached from an earlier request
    echo: str | None = None  # prompt text to send back before the answer
    prompt_logprobs: list[dict[str, Any]] | None = None  # for echo with logprobs
    scored: list[tuple[int, int]] = field(default_factory=list)  # (batch index, next prompt token)
    tenant: str = ""  # whose KV it may reuse (prefixes.py)
    shared: int = 0  # leading prompt tokens any tenant may reuse
    split: int = 0  # where the prompt's last message begins: its canonical parts (prefixes.py)
    awaits: tuple[int, int] | None = None  # (sequence, length): its beginning, being computed there

    @property
    def limit(self) -> int:
        """How much of the prompt may come from a cache: all but the last token, whose logits
        start the answer; nothing when every prompt position must be scored (echo+logprobs)."""
        return 0 if self.prompt_logprobs is not None else len(self.prompt) - 1


class Engine:
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
        # n_ctx is per sequence; a non-unified cache splits the total evenly between them.
        params.n_ctx = int(config["n_ctx"]) * self.parallel
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = self.parallel
        params.n_threads, params.n_threads_batch = n_threads, n_threads_batch
        params.kv_unified = False
        self.context = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_ctx = llama_cpp.llama_n_ctx_seq(self.ctx)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.tokenizer = Tokenizer(self.model)
        self.template = ChatTemplate.of_model(
            self.model, config.get("chat_format"), config.get("chat_template"), config.get("tool_format"), self.tokenizer
        )
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.model.vocab))
        self.free_seqs = list(range(self.parallel))
        self.held = [Holding() for _ in range(self.parallel)]  # what each sequence's KV holds
        # Sharing prefixes between sequences, and the host-memory cache behind them.
        self.sharing = bool(config.get("prefix_sharing", True))
        self.host = HostCache(int(config.get("prefix_cache_mb", 0)) << 20 if self.sharing else 0)
        self.pending: set[int] = set()  # sequences a queued copy reads or writes (done at the next decode)
        self.waiting: deque[Request] = deque()
        self.running: dict[str, Request] = {}
        # Since the worker started, reported in its ``stats`` events (worker.py).
        self.totals = {
            "requests": 0, "prompt_tokens": 0, "reused_tokens": 0, "cache_hits": 0, "generated_tokens": 0,
            "copied_tokens": 0, "restored_tokens": 0,
        }

    # --- requests in and out ---

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def chat_prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, tool_choice: Any = None) -> tuple[list[int], list[str]]:
        """The prompt tokens of chat ``messages`` (the chat template rendered with the tools
        offered, tokenized), and the template's stop strings."""
        text, template_stop, has_bos = self.template.render(messages, tools, tool_choice)
        return self.tokenizer.tokenize(text, add_bos=self.add_bos and not has_bos), template_stop

    def submit(self, rid: str, op: str, params: dict[str, Any]) -> None:
        """Validate and queue a chat or completion request (raises RequestError)."""
        stop = list(params.get("stop") or [])
        if op == "chat":
            prompt, template_stop = self.chat_prompt(params["messages"], params.get("tools"), params.get("tool_choice"))
            stop += [s for s in template_stop if s not in stop]
            param = "messages"
        else:
            raw = params.get("prompt", "")
            prompt = list(raw) if isinstance(raw, list) else self.tokenizer.tokenize(raw, add_bos=self.add_bos)
            param = "prompt"
            bad = [t for t in prompt if not 0 <= t < self.tokenizer.n_vocab]
            if bad:
                raise RequestError(400, "'prompt' has token ids outside the vocabulary.", "prompt", "invalid_value")
        if not prompt:
            # Generating from nothing still needs one token to start from.
            prompt = [llama_cpp.llama_vocab_bos(self.model.vocab)]
        if len(prompt) >= self.n_ctx:
            raise ContextError(len(prompt) + 1, self.n_ctx, param)
        n = int(params.get("n") or 1)
        if n > self.parallel:
            raise RequestError(400, f"'n' can be at most {self.parallel} for this model.", "n", "invalid_value")
        sampling = SamplingParams.from_request(params, self.tokenizer.n_vocab)
        if sampling.top_logprobs > 20:
            raise RequestError(400, "'top_logprobs' can be at most 20.", "top_logprobs", "invalid_value")
        request = Request(rid, prompt, n, params.get("max_tokens"), sampling, stop, tenant=str(params.get("tenant") or ""))
        request.split = len(prompt)
        if op == "chat":
            messages = params["messages"]
            tools = params.get("tools"), params.get("tool_choice")
            if len(messages) > 1:
                request.split = self._rendered_prefix(messages[:-1], prompt, *tools)
            if params.get("shared_messages"):
                request.shared = self._rendered_prefix(messages[: int(params["shared_messages"])], prompt, *tools)
        if params.get("echo"):
            raw = params.get("prompt")
            request.echo = raw if isinstance(raw, str) else self.tokenizer.text_of(prompt)
            if sampling.logprobs:
                # The prompt's own logprobs need logits at every prompt position: no reuse.
                first = self.tokenizer.piece(prompt[0])
                request.prompt_logprobs = [
                    {"token": first.decode("utf-8", errors="backslashreplace"), "logprob": None,
                     "bytes": list(first), "top_logprobs": None}
                ]
        # Build the samplers now so a bad grammar is refused before any work starts.
        request.choices = [
            Choice(index, -1, Sampler(sampling, self.model, self.n_ctx, index), TextStream(stop)) for index in range(n)
        ]
        self.waiting.append(request)
        self._admit()

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

    def _rendered_prefix(self, messages: list[dict[str, Any]], prompt: list[int], *tools: Any) -> int:
        """How many leading tokens of ``prompt`` are the rendering of ``messages`` (its first
        ones): what the prompt and that rendering have in common. None when the template
        cannot render them alone (Llama 3 wants a user message to put the tools in)."""
        try:
            text, _, has_bos = self.template.render(messages, *tools)
        except RequestError:
            return 0
        head = self.tokenizer.tokenize(text, add_bos=self.add_bos and not has_bos)
        return common_prefix(head, prompt, len(prompt))

    def _admit(self) -> None:
        while self.waiting and len(self.free_seqs) >= self.waiting[0].n:
            request = self.waiting.popleft()
            reuse = {seq: self._usable(seq, request) for seq in self.free_seqs}
            first = self._sequence_for(reuse)
            self.free_seqs.remove(first)
            # The other choices' sequences get a copy of the first one's KV: take the emptiest.
            seqs = [first] + sorted(self.free_seqs, key=lambda seq: len(self.held[seq].tokens))[: request.n - 1]
            for seq in seqs[1:]:
                self.free_seqs.remove(seq)
            for choice, seq in zip(request.choices, seqs):
                choice.seq_id = seq
                self._shrink(seq, reuse[seq] if seq == first else 0)
                self._own(seq, request)
            request.fed = request.reused = request.choices[0].n_past = reuse[first]
            self.running[request.rid] = request
            if self.sharing:
                self._take_prefix(request)
            self.emit({"id": request.rid, "event": "prompt", "prompt_tokens": len(request.prompt)})

    def _usable(self, seq: int, request: Request) -> int:
        return self.held[seq].usable(request.prompt, request.tenant, request.shared, request.limit, request.split)

    def _own(self, seq: int, request: Request) -> None:
        """``seq`` now holds ``request``'s tokens (what it kept of others' is within them)."""
        held = self.held[seq]
        held.tenant, held.shared, held.prompt_len, held.split = request.tenant, request.shared, len(request.prompt), request.split

    def _sequence_for(self, reuse: dict[int, int]) -> int:
        """The free sequence for a prompt sharing ``reuse[seq]`` tokens with each one's cache
        (see the module's docstring). ``free_seqs`` is in release order: the first of equals
        is the least recently used."""
        # A continued conversation: all its last prompt but the always re-decoded last token.
        held = self.held
        continued = [seq for seq in self.free_seqs if held[seq].prompt_len and reuse[seq] >= held[seq].prompt_len - 1]
        if continued:
            return max(continued, key=reuse.__getitem__)
        empty = [seq for seq in self.free_seqs if not held[seq].tokens]
        if empty:
            return empty[0]
        return max(self.free_seqs, key=reuse.__getitem__)

    def _shrink(self, seq: int, keep: int) -> None:
        """Drop what ``seq`` holds past ``keep`` tokens; saved to host memory first when that
        is much and held nowhere else."""
        held = self.held[seq]
        if len(held.tokens) - keep >= SAVE_MIN and self.host.budget and seq not in self.pending and not self._held_elsewhere(seq):
            self.host.save(self.ctx, seq, held)
        llama_cpp.llama_memory_seq_rm(self.memory, seq, keep, -1)
        del held.tokens[keep:]
        held.shared = min(held.shared, keep)

    def _held_elsewhere(self, seq: int) -> bool:
        tokens, tenant = self.held[seq].tokens, self.held[seq].tenant
        return any(
            other != seq and self.held[other].tenant == tenant
            and common_prefix(self.held[other].tokens, tokens, len(tokens)) == len(tokens)
            for other in range(self.parallel)
        )

    def _take_prefix(self, request: Request) -> None:
        """Give ``request``'s first sequence the longest beginning of its prompt found
        elsewhere, if it beats what the sequence holds by ``SHARE_MIN``: another sequence's
        (copied), a saved one (restored), or one being computed now (waited for)."""
        seq = request.choices[0].seq_id
        best, donor = request.fed, None
        for other in range(self.parallel):
            if other != seq and (usable := self._usable(other, request)) > best:
                best, donor = usable, other
        key, saved = self.host.best(request.prompt, request.tenant, request.shared, request.limit, request.split)
        coming = self._being_computed(request)
        if coming is not None and coming[1] >= max(best, saved) + SHARE_MIN:
            request.awaits = coming
        elif saved >= max(best, request.fed) + SHARE_MIN and seq not in self.pending:
            holding = self.host.restore(self.ctx, key, seq)
            if holding is None:  # the state did not fit back: start from nothing
                llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)
                self.held[seq] = Holding()
                self._took(request, 0, "restored_tokens")
            else:
                self.held[seq] = holding
                self._shrink(seq, saved)
                self._took(request, saved, "restored_tokens")
        elif donor is not None and best >= request.fed + SHARE_MIN:
            self._copy(donor, seq, best)
            self._took(request, best, "copied_tokens")

    def _being_computed(self, request: Request) -> tuple[int, int] | None:
        """(sequence, length): a running request whose prefill will compute the longest
        beginning of ``request``'s prompt that it may use."""
        best = None
        for other in self.running.values():
            if other is request or other.awaits is not None or other.fed >= len(other.prompt):
                continue
            length = Holding(other.prompt, other.tenant, other.shared, len(other.prompt), other.split).usable(
                request.prompt, request.tenant, request.shared, request.limit, request.split
            )
            if length > other.fed and (best is None or length > best[1]):
                best = (other.choices[0].seq_id, length)
        return best

    def _resume(self, request: Request) -> None:
        """A request waiting for its beginning: copy it once computed; if its computation
        stopped (cancelled), look again for the best start."""
        source, length = request.awaits
        have = self._usable(source, request)
        if have < length and any(
            other.choices[0].seq_id == source and other.fed < length and other.awaits is None
            for other in self.running.values() if other is not request
        ):
            return  # still being computed
        request.awaits = None
        if have >= request.fed + SHARE_MIN:
            self._copy(source, request.choices[0].seq_id, have)
            self._took(request, have, "copied_tokens")
        else:
            self._take_prefix(request)

    def _copy(self, source: int, seq: int, length: int) -> None:
        # Whole-stream copy (the only kind a non-unified cache does between sequences), then
        # cut to the prefix. The bytes move at the next decode, before its batch is placed.
        llama_cpp.llama_memory_seq_cp(self.memory, source, seq, -1, -1)
        llama_cpp.llama_memory_seq_rm(self.memory, seq, length, -1)
        self.held[seq] = self.held[source].copy(length)
        self.pending.update((source, seq))

    def _took(self, request: Request, length: int, total: str) -> None:
        seq = request.choices[0].seq_id
        self._own(seq, request)
        self.totals[total] += length
        request.fed = request.reused = request.choices[0].n_past = length

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
        # In sequence-id order: llama.cpp reuses the previous step's compute graph only for a
        # batch in that order. Requests that started one after another hold their ids in any
        # order, and then every step rebuilt the graph: 8 streams decoded at 0.64x the
        # in-process ceiling instead of 1.10x (`make bench`, issue #27, docs/MODELS.md).
        generating = sorted(
            ((request, choice) for request in self.running.values() for choice in request.choices
             if choice.next_token is not None and not choice.finished),
            key=lambda pair: pair[1].seq_id,
        )
        chunks: list[tuple[Request, int]] = []
        room = self.n_batch - len(generating)
        for request in self.running.values():
            if room <= 0:
                break
            if request.fed == len(request.prompt) or request.awaits is not None:
                continue
            end = self._chunk_end(request, room)
            if end > request.fed:
                chunks.append((request, end))
                room -= end - request.fed
        if generating:
            self.batch.n_tokens = 0
            for _, choice in generating:
                choice.logits_index = self._add(choice.next_token, choice.n_past, choice.seq_id, True)
                choice.n_past += 1
                choice.next_token = None
            self._decode()
            self._hand_out({request.rid: request for request, _ in generating}.values())
            self.flush()  # the streams' tokens go before the prompts of this step are computed
        for request, end in chunks:
            if request.rid in self.running:
                self._prefill(request, end)
                self.flush()

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
            request.prompt_logprobs.append(self._logprob_entry(index, token, request.sampling.top_logprobs))
        request.scored.clear()
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
                    self._sample(request, choice)
                    choice.logits_index = -1
            if all(choice.finished for choice in request.choices):
                self._complete(request)

    def _chunk_end(self, request: Request, room: int) -> int:
        """Where this step's chunk of the prompt ends: within one canonical part (prefixes.py),
        never leaving less than ``BLOCK`` of the part to a later chunk, and not at all when
        the room left in the step would make a short chunk of a longer part. With an
        ``n_batch`` under a block, as far as there is room."""
        fed = request.fed
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
            self._finish(request, choice, "", "length")
            return
        token = choice.sampler.sample(self.ctx, choice.logits_index)
        if self.tokenizer.is_eog(token):
            self._finish(request, choice, choice.text.flush(), "stop")
            return
        if request.sampling.logprobs:
            choice.held_logprobs.append(self._logprob_entry(choice.logits_index, token, request.sampling.top_logprobs))
        choice.completion_tokens += 1
        released = choice.text.push(self.tokenizer.piece(token))
        if released.stopped:
            self._finish(request, choice, released.text, "stop")
        elif choice.completion_tokens >= (request.max_tokens or self.n_ctx) or len(request.prompt) + choice.completion_tokens >= self.n_ctx:
            self._finish(request, choice, released.text + choice.text.flush(), "length")
        else:
            choice.next_token = token
            if released.text:
                self._delta(request, choice, released.text)

    def _delta(self, request: Request, choice: Choice, text: str, finish_reason: str | None = None) -> None:
        event: dict[str, Any] = {"id": request.rid, "event": "delta", "index": choice.index, "text": text}
        if request.sampling.logprobs:
            # Tokens whose text was held back (half a character, a possible stop string)
            # are reported with the text they finally produced.
            event["logprobs"] = choice.held_logprobs if text else []
            choice.held_logprobs = []
        if finish_reason:
            event["finish_reason"] = finish_reason
        self.emit(event)

    def _finish(self, request: Request, choice: Choice, text: str, reason: str) -> None:
        choice.finished = True
        choice.next_token = None
        self._delta(request, choice, text, reason)

    def stats(self) -> dict[str, int]:
        """What the engine is doing now, and its totals (see ``totals``)."""
        return {
            "decoding": sum(len(request.choices) for request in self.running.values()),
            "waiting": len(self.waiting),
            "kv_used": sum(len(held.tokens) for held in self.held),
            "kv_size": self.n_ctx * self.parallel,
            **self.totals,
            **self.host.stats(),
        }

    def _complete(self, request: Request) -> None:
        completion_tokens = sum(choice.completion_tokens for choice in request.choices)
        totals = self.totals
        totals["requests"] += 1
        totals["prompt_tokens"] += len(request.prompt)
        totals["reused_tokens"] += request.reused
        totals["cache_hits"] += 1 if request.reused else 0
        totals["generated_tokens"] += completion_tokens
        self.emit(
            {
                "id": request.rid,
                "event": "usage",
                "prompt_tokens": len(request.prompt),
                "cached_tokens": request.reused,
                "completion_tokens": completion_tokens,
            }
        )
        del self.running[request.rid]
        self._release(request)
        self.emit({"id": request.rid, "event": "done"})

    def _logprob_entry(self, logits_index: int, token: int, top: int) -> dict[str, Any]:
        logits = logits_at(self.ctx, logits_index, self.tokenizer.n_vocab)
        logprob, best = token_logprobs(logits, token, top)

        def entry(t: int, lp: float) -> dict[str, Any]:
            piece = self.tokenizer.piece(t)
            return {"token": piece.decode("utf-8", errors="backslashreplace"), "logprob": lp, "bytes": list(piece)}

        return {**entry(token, logprob), "top_logprobs": [entry(t, lp) for t, lp in best]}

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)
