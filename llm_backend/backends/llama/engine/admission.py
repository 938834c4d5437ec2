"""Admission: which sequence a request gets, and what its prompt starts from (issue #34).

A sequence keeps its KV cells after its request ends, and a new request computes only what
it cannot find. It goes to a free sequence holding a conversation it continues (that
sequence's last prompt is where this one starts: the next turn, a retry), else to an empty
one, else to the one sharing the longest prefix, the least recently used among equals; so
conversations taking turns each keep their sequence while one is empty. Then, if it gives at
least ``SHARE_MIN`` more tokens, its prompt's beginning is taken from elsewhere: another
sequence's KV (running or idle), copied; a prefix saved to host memory, restored; or, when
another request is computing that beginning right now (users arriving together with one
system prompt), it waits for it and copies it then; failing all of these, a prefix kept on
disk (prefix_disk.py: a prompt's first part is written there once computed, so a new session,
a restarted engine or another replica starts from it; read by a thread while the other
streams decode, the request waiting for it as for a beginning being computed). KV about to
be overwritten is saved to host memory first (``HostCache``). All of this only within a
tenant, or within what both declare shared (prefixes.py).

The sequences share one pool of KV cells (batching.py), so a request also needs room in it
(issue #49): it reserves its prompt and its output room, and is admitted only when that fits
beside what the running requests reserved or hold, whichever is more; else it waits, in
order. With ``max_tokens`` (fitted to what its window and the pool leave: submission.py)
the room is that, exactly. Without (most SDKs' and chat UIs' requests), reserving the rest of its window let
two requests of the packaged model's 8 sequences decode at once; so it reserves a share, ``pool / parallel``
less its prompt (at least submission.py's ``FLOOR``), and grows past it while cells are free, as llama.cpp's
server lets a sequence grow in its unified cache. When a step would
need more cells than are free, what idle sequences keep is dropped first; then the request
past its share that was admitted last ends with ``length`` (``squeeze``), as vLLM preempts its
newest: an older, longer answer is not cut for a newcomer, and a request within its
reservation is never cut. So a decode never runs out of cells. What idle sequences keep for
later prompts is dropped, least useful first (saved to host memory when long), until what is
reserved and kept fits.

``Admission``, a part of the engine (batching.py), holds what it decides on: the requests
waiting and running, the sequences (``held``, ``free_seqs``, ``pending``), ``host``, ``disk``.
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from collections.abc import Callable
from typing import Any

import llama_cpp

from .prefix_disk import DISK_MIN, disk_prefixes
from .prefixes import Holding, HostCache, common_prefix
from .requests import Request

# A prefix found elsewhere is taken when it gives this many more tokens than the chosen
# sequence holds: copying one costs a few ms, computing 32 tokens ~100 ms on 2 cores.
SHARE_MIN = 32
# A sequence about to lose this many cached tokens is saved to host memory first.
SAVE_MIN = 64


class Admission:
    """Requests onto sequences, each starting from the longest beginning it may take."""

    def __init__(
        self, ctx: Any, parallel: int, n_ctx: int, pool: int, config: dict[str, Any], emit: Callable[[dict[str, Any]], None],
        totals: dict[str, int],
    ) -> None:
        self.ctx = ctx
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.parallel = parallel
        self.n_ctx = n_ctx  # the window: the longest a sequence may grow
        self.pool = pool  # the KV cells every sequence shares
        self.shared_pool = bool(config.get("kv_shared", False))  # false: each sequence has cells of its own (batching.py)
        self.emit = emit  # a request's ``prompt`` event, once admitted
        self.totals = totals  # the engine's (batching.py): tokens copied, restored, read; requests squeezed
        self.free_seqs = list(range(parallel))
        self.held = [Holding() for _ in range(parallel)]  # what each sequence's KV holds
        self.sharing = bool(config.get("prefix_sharing", True))  # prefixes shared between sequences
        # Reuse limited to what leaves an answer's bits as computed from nothing (prefixes.py).
        self.exact_reuse = bool(config.get("exact_reuse", True))
        self.host = HostCache(int(config.get("prefix_cache_mb", 0)) << 20 if self.sharing else 0)
        # And on disk (prefix_disk.py): a client's instructions and tools, for its next sessions.
        self.disk = disk_prefixes(config)
        self.keeping: list[tuple[int, Holding]] = []  # (sequence, its first part): to disk at the step's end
        self.pending: set[int] = set()  # sequences a queued copy reads or writes (done at the next decode)
        self.waiting: deque[Request] = deque()
        self.running: dict[str, Request] = {}

    def queue(self, request: Request) -> None:
        """A request in, admitted now if it fits, else when it does, in order."""
        self.waiting.append(request)
        self.admit()

    def cancel(self, rid: str) -> Request | None:
        """Drop a request wherever it is, its sequences freed; the request, if it was known."""
        waiting = [request for request in self.waiting if request.rid == rid]
        for request in waiting:
            self.waiting.remove(request)
        found = waiting[0] if waiting else self.running.pop(rid, None)
        if found is not None:
            self.release(found)
        return found

    def complete(self, request: Request) -> None:
        """A request answered (answers.py sent its usage): its sequences go to the next."""
        del self.running[request.rid]
        self.release(request)

    def release(self, request: Request) -> None:
        for choice in request.choices:
            if choice.seq_id >= 0:
                # The KV stays for a later prompt with the same beginning.
                self.free_seqs.append(choice.seq_id)
                choice.seq_id = -1
        for choice in request.choices:
            choice.sampler.close()
        self.admit()

    def forget(self) -> None:
        """Empty every sequence's KV (the host cache keeps what it saved: it is whole)."""
        llama_cpp.llama_memory_clear(self.memory, True)
        self.held[:] = [Holding() for _ in range(self.parallel)]  # in place: the executor holds the list too
        self.pending.clear()

    def copies_done(self) -> None:
        """A batch was decoded: the copies queued before it were made (``copy``)."""
        self.pending.clear()

    def _holds(self, request: Request) -> int:
        """The output cells ``request``'s sequences will hold after the next step: what they
        hold past its prompt, and the token each generating choice decodes next."""
        size = len(request.prompt)
        return sum(
            max(0, len(self.held[choice.seq_id].tokens) - size) + (choice.next_token is not None and not choice.finished)
            for choice in request.choices if choice.seq_id >= 0
        )

    def _committed(self) -> int:
        """The cells the running requests reserved or will hold after the next step, whichever
        is more, for each: within it, a decode finds its cells (what idle sequences keep aside)."""
        return sum(
            len(request.prompt) + max(request.n * request.room, self._holds(request)) for request in self.running.values()
        )

    def admit(self) -> None:
        while (
            self.waiting and len(self.free_seqs) >= self.waiting[0].n
            and self._committed() + self.waiting[0].reserve <= self.pool
        ):
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
            self._make_room(request)
            if self.sharing:
                self._take_prefix(request)
            prompt = {"id": request.rid, "event": "prompt", "prompt_tokens": len(request.prompt)}
            if request.reasoning_start is not None:
                prompt["reasoning_start"] = request.reasoning_start  # how its answers are split (reasoning/)
            self.emit(prompt)

    def _make_room(self, request: Request) -> None:
        """Drop what idle sequences keep until it fits beside what the running requests
        reserve: first what is least use to ``request`` (a beginning it could copy is kept
        longest), the least recently used among equals (``free_seqs`` is in release order).
        Counted per sequence: cells sequences share count once each, so this errs on the safe side."""
        if not self.shared_pool:
            return  # what an idle sequence keeps takes no other sequence's cells
        kept = sum(len(self.held[seq].tokens) for seq in self.free_seqs)
        over = self._committed() + kept - self.pool
        for seq in sorted(self.free_seqs, key=lambda seq: self._usable(seq, request)):
            if over <= 0:
                return
            over -= len(self.held[seq].tokens)
            self._shrink(seq, 0)

    def squeeze(self, cut: Callable[[Request], None]) -> None:
        """Before a step, room for every token it adds: what idle sequences keep is dropped,
        the least recently used first; then, while that is not enough, the request past its
        share admitted last ends with ``length`` (the module's docstring; ``cut`` ends its
        answers: answers.py). The requests within their reservations fit (admission), so this
        ends before reaching them."""
        if not self.shared_pool:
            return
        while True:
            over = self._committed() + sum(len(self.held[seq].tokens) for seq in self.free_seqs) - self.pool
            for seq in list(self.free_seqs):
                if over <= 0:
                    return
                over -= len(self.held[seq].tokens)
                self._shrink(seq, 0)
            if over <= 0:
                return
            past = [
                request for request in self.running.values()
                if request.share is not None and self._holds(request) > request.n * request.share
            ]
            if not past:
                return  # cannot be: what is within its reservation fits
            request = past[-1]
            cut(request)
            self.totals["pool_stops"] += 1
            self.complete(request)  # its sequences are free: what they keep is dropped next

    def _usable(self, seq: int, request: Request) -> int:
        return self.held[seq].usable(request.prompt, request.tenant, request.shared, request.limit, request.split, request.canonical(self.exact_reuse))

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
        key, saved = self.host.best(request.prompt, request.tenant, request.shared, request.limit, request.split, request.canonical(self.exact_reuse))
        coming = self._being_computed(request)
        in_memory = max(best, saved, coming[1] if coming is not None else 0)
        if self.disk is not None and seq not in self.pending and self._from_disk(request, seq, in_memory):
            return
        if coming is not None and coming[1] >= max(best, saved) + SHARE_MIN:
            request.awaits = coming
        elif key is not None and saved >= max(best, request.fed) + SHARE_MIN and seq not in self.pending:
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
            self.copy(donor, seq, best)
            self._took(request, best, "copied_tokens")

    def _from_disk(self, request: Request, seq: int, in_memory: int) -> bool:
        """Start reading the prefix on disk giving ``request`` the most, if it beats what
        memory offers by ``SHARE_MIN``: read and checked by a thread (0.1 s for an agent's
        204 MB), while the other streams decode; ``read_in`` restores it."""
        assert self.disk is not None  # asked only with prefixes on disk
        entry, length = self.disk.best(request.prompt, request.tenant, request.shared, request.limit, request.split, request.canonical(self.exact_reuse))
        if entry is None or length < max(in_memory, request.fed) + SHARE_MIN:
            return False
        request.reading = (self.disk.reading(entry), entry, length)
        return True

    def read_in(self, request: Request) -> None:
        """A request whose prefix is being read: once read, put it in its sequence; a file
        found wrong is passed over (prefix_disk.py) for the best start left."""
        assert request.reading is not None and self.disk is not None  # asked only while one is read
        future, entry, length = request.reading
        seq = request.choices[0].seq_id
        if not future.done() or seq in self.pending:
            return
        request.reading = None
        state = future.result()
        if state is None:
            self._take_prefix(request)
            return
        if llama_cpp.llama_state_seq_set_data(self.ctx, state, len(state), seq) != len(state):
            # Whatever the sequence held may be half overwritten: it starts from nothing.
            llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)
            self.held[seq] = Holding()
            self._took(request, 0, "disk_tokens")
            return
        # Cut to what this prompt may use, not saved to host first (``_shrink``): the rest is on disk still.
        llama_cpp.llama_memory_seq_rm(self.memory, seq, length, -1)
        self.held[seq] = self.disk.restored(entry).copy(length)
        self._took(request, length, "disk_tokens")

    def wait_for_reads(self) -> None:
        """A step with nothing to decode while prefixes are read: wait a little for them
        rather than spin (a request arriving meanwhile waits at most that)."""
        futures = [request.reading[0] for request in self.running.values() if request.reading is not None]
        if futures:
            concurrent.futures.wait(futures, timeout=0.05, return_when=concurrent.futures.FIRST_COMPLETED)

    def first_part_to_disk(self, request: Request) -> bool:
        """Whether ``request``'s first part is written to disk once computed (prefix_disk.py),
        for the sessions that will start with it: a long one mostly computed now (a session's
        start, not a later turn continuing what memory held: each of those would write its
        whole history again)."""
        return self.disk is not None and DISK_MIN <= request.split < len(request.prompt) and request.reused <= request.split // 2

    def keep_on_disk(self, request: Request, end: int) -> None:
        """A prefill just reached ``end``: at the end of a first part that goes to disk, keep it."""
        if end != request.split or not self.first_part_to_disk(request) or self.disk is None:
            return
        seq = request.choices[0].seq_id
        tokens = self.held[seq].tokens
        if len(tokens) != end:
            return
        holding = Holding(list(tokens), request.tenant, min(request.shared, end), end, end)
        if len(request.prompt) - end > end // 8:
            self.disk.save(self.ctx, seq, holding)  # a long last part: its cells are not worth the file's room
        else:
            # After the step, once the first token is out: copying the state out takes ~60 ms
            # for 9k tokens, more from a GPU (~0.3 s of prefill there). The sequence then holds
            # the last part too, cut off again where the file is restored (``read_in``).
            self.keeping.append((seq, holding))

    def kept(self) -> None:
        """Write the first parts ``keep_on_disk`` put off, where their sequences hold them still."""
        for seq, holding in self.keeping:
            if self.held[seq].tokens[: len(holding.tokens)] == holding.tokens and self.disk is not None:
                self.disk.save(self.ctx, seq, holding)
        self.keeping.clear()

    def _being_computed(self, request: Request) -> tuple[int, int] | None:
        """(sequence, length): a running request whose prefill will compute the longest
        beginning of ``request``'s prompt that it may use."""
        best = None
        for other in self.running.values():
            if other is request or other.awaits is not None or other.reading is not None or other.fed >= len(other.prompt):
                continue
            length = Holding(other.prompt, other.tenant, other.shared, len(other.prompt), other.split).usable(
                request.prompt, request.tenant, request.shared, request.limit, request.split, request.canonical(self.exact_reuse)
            )
            if length > other.fed and (best is None or length > best[1]):
                best = (other.choices[0].seq_id, length)
        return best

    def resume(self, request: Request) -> None:
        """A request waiting for its beginning: copy it once computed; if its computation
        stopped (cancelled), look again for the best start."""
        assert request.awaits is not None  # asked only of a request that waits
        source, length = request.awaits
        have = self._usable(source, request)
        if have < length and any(
            other.choices[0].seq_id == source and other.fed < length and other.awaits is None
            for other in self.running.values() if other is not request
        ):
            return  # still being computed
        request.awaits = None
        if have >= request.fed + SHARE_MIN:
            self.copy(source, request.choices[0].seq_id, have)
            self._took(request, have, "copied_tokens")
        else:
            self._take_prefix(request)

    def copy(self, source: int, seq: int, length: int) -> None:
        # Whole-stream copy (the only kind a non-unified cache does between sequences), then
        # cut to the prefix. The bytes move at the next decode, before its batch is placed;
        # in a shared pool the cells are shared instead, and take no more room.
        llama_cpp.llama_memory_seq_cp(self.memory, source, seq, -1, -1)
        llama_cpp.llama_memory_seq_rm(self.memory, seq, length, -1)
        self.held[seq] = self.held[source].copy(length)
        self.pending.update((source, seq))

    def _took(self, request: Request, length: int, total: str) -> None:
        seq = request.choices[0].seq_id
        self._own(seq, request)
        self.totals[total] += length
        request.fed = request.reused = request.choices[0].n_past = length

