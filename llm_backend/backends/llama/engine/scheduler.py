"""The scheduler: what one step runs, planned before it is decoded (batching.py).

Before a step, the requests waiting for a beginning take it (one being computed, now done;
one read from disk, now read: admission.py), and the KV pool makes room for every token the
step adds (``Admission.squeeze``). Then the step is: one token for every generating choice,
in sequence-id order (llama.cpp reuses the previous step's compute graph only for a batch in
that order; requests that started one after another hold their ids in any order, and then
every step rebuilt the graph: 8 streams decoded at 0.64x the in-process ceiling instead of
1.10x, issue #27, docs/MODELS.md), then prompt chunks, the shortest prompt left first (a chat
beside an agent's 6k-token prompt is answered while that prompt is computed, not after it:
issue #49), each decoded alone (batching.py says why).

How large a prompt chunk is (issue #57). Beside generating streams, a step holds at most
``n_batch`` tokens, their rows first: a stream waits for at most that much prompt between two
of its tokens. With no stream generating, nothing waits, and a chunk is as large as
``n_ubatch`` (llama_params.py: by device: on a GPU the larger chunk is what feeds its matrix
units, on the CPU the same as ``n_batch``). Either way a chunk stays within one canonical part
of its prompt and in blocks (``chunk_end``: prefixes.py), so its size changes no answer's
bits on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable

from .admission import Admission
from .prefixes import BLOCK
from .requests import Choice, Request


class Scheduler:
    def __init__(self, admission: Admission, n_batch: int, n_ubatch: int) -> None:
        self.admission = admission
        self.n_batch = n_batch  # a step's tokens beside generating streams
        self.n_ubatch = n_ubatch  # a prompt chunk's tokens while no stream generates

    def prepare(self, cut: Callable[[Request], None]) -> None:
        """Before a step: beginnings taken where they are ready, room for the step's tokens
        in the pool (``cut`` ends a request the pool cannot hold: answers.py)."""
        admission = self.admission
        for request in list(admission.running.values()):
            if request.awaits is not None:
                admission.resume(request)
            elif request.reading is not None:
                admission.read_in(request)
        admission.squeeze(cut)

    def generating(self) -> list[tuple[Request, Choice]]:
        """The choices that decode a token this step, in sequence-id order."""
        return sorted(
            ((request, choice) for request in self.admission.running.values() for choice in request.choices
             if choice.next_token is not None and not choice.finished),
            key=lambda pair: pair[1].seq_id,
        )

    def chunks(self, rows: int) -> list[tuple[Request, int]]:
        """The prompt chunks of this step beside ``rows`` generating rows: (request, where its
        chunk ends), the shortest prompt left first."""
        budget = self.n_batch if rows else self.n_ubatch
        room = budget - rows
        chunks: list[tuple[Request, int]] = []
        for request in sorted(self.admission.running.values(), key=lambda request: len(request.prompt) - request.fed):
            if room <= 0:
                break
            if request.fed == len(request.prompt) or request.awaits is not None or request.reading is not None:
                continue
            end = self.chunk_end(request, room, budget)
            if end > request.fed:
                chunks.append((request, end))
                room -= end - request.fed
        return chunks

    def chunk_end(self, request: Request, room: int, budget: int) -> int:
        """Where this step's chunk of the prompt ends: within one canonical part (prefixes.py),
        never leaving less than ``BLOCK`` of the part to a later chunk, and not at all when
        the room left in the step would make a short chunk of a longer part. With a
        ``budget`` under a block, as far as there is room."""
        fed = request.fed
        if not self.admission.exact_reuse:
            # Any chunks; cut only where a session's start is kept on disk (admission.py).
            end = min(len(request.prompt), fed + room)
            return request.split if fed < request.split < end and self.admission.first_part_to_disk(request) else end
        part_end = request.split if fed < request.split else len(request.prompt)
        end = min(part_end, fed + room)
        if end == part_end or budget < BLOCK:
            return end
        if part_end - end < BLOCK:
            end = part_end - BLOCK
        return end if end - fed >= BLOCK else fed
