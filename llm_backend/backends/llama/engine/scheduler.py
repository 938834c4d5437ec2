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

And by time (issue #59): a cancelled request leaves only between two steps (a llama_decode
cannot be stopped cheaply), so a step's prompt chunks hold what is expected to take at most
``CHUNK_SECONDS`` (``Pace``), never under ``MIN_CHUNK``, never over the budget above. A prompt
token attends to every cell before it: on the CPU a token's cost grows with its depth, and
a chunk of 512 that took 3.3 s at the start of a 10k-token prompt took 5-7 s at 8-10k on
these 2 cores (load 2; 30 s at a load of 7), and a client that left then was let go 7 s
later. Measured, not derived from the depth: how much a cell of depth costs against a
token's weights differs by model, device, threads and load, which a rule from the depth
alone cannot know; and what the timing changes is only where chunks end, which changes no
bits (any chunk of a block or more, above). A GPU computes a chunk of 2048 in milliseconds:
there the budget, not the time, bounds it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from math import sqrt
from typing import TYPE_CHECKING

from .admission import Admission
from .prefixes import BLOCK
from .requests import Choice, Request

if TYPE_CHECKING:
    from .media import Media

# The longest a step's prompt chunks should take: a client that leaves waits for the chunk
# under way (issue #59: let go within 5 s). On 2 cores (SmolLM2, 2 batch threads, a 10k-token
# prompt alone, load 2) a chunk of 512 took 3.3 s at its start, 6.2-6.9 s at 7k tokens of
# context, 8.6 at 9k; paced, 192 took 2.6-2.7 s at 7-8k, 128 2.2-2.7 s at 8.5-10k. Under
# 2 s, chunks of 128 from 7k on, and the prompt's prefill 12 % slower (a decode's fixed cost,
# below); at 3 s, 8 % (93.0 s unpaced, 100.6 paced for 10k tokens).
CHUNK_SECONDS = 3.0
# The smallest chunk the pace makes (the room may make a smaller one). Not one block: where
# the cores are oversubscribed (other processes' spinning threads), llama.cpp's 2 threads wait
# at each of a decode's barriers, a cost by the decode, not by its tokens: at 8k tokens of
# context and a load of 4, a chunk of 64 took 72 ms a token, 128 47, 256 37, 512 29.5 (in a
# quiet moment at 7k, 64 and 512 alike, 17-18.5; one batch thread, loaded, alike too). 128
# keeps a chunk at 10k tokens of context near 2.5 s where the cores are not oversubscribed.
MIN_CHUNK = 2 * BLOCK
PACE_POINTS = 8  # the latest chunks timed: the line of a token's cost by depth is fitted to them


class Pace:
    """What a prompt token costs here by its depth, from the latest chunks timed: seconds a
    token at a chunk's middle depth. The level is the latest chunk's (the load changes it
    from one chunk to the next); the slope, the line through the latest ``PACE_POINTS``
    (none while they lie at one depth, and never falling: a deeper cell never costs less).
    Unmeasured, it bounds nothing."""

    def __init__(self) -> None:
        self.points: deque[tuple[float, float]] = deque(maxlen=PACE_POINTS)  # (depth, seconds a token)
        self.slope = 0.0

    def record(self, depth: int, tokens: int, seconds: float) -> None:
        """A chunk of ``tokens`` after ``depth`` cells took ``seconds`` (to its logits). A
        chunk under a block is left out: a decode's fixed cost weighs in it."""
        if tokens < BLOCK or seconds <= 0:
            return
        self.points.append((depth + tokens / 2, seconds / tokens))
        n = len(self.points)
        mean_x, mean_y = sum(x for x, _ in self.points) / n, sum(y for _, y in self.points) / n
        spread = sum((x - mean_x) ** 2 for x, _ in self.points)
        covariance = sum((x - mean_x) * (y - mean_y) for x, y in self.points)
        self.slope = max(0.0, covariance / spread) if spread >= BLOCK**2 else 0.0

    def per_token(self, depth: float) -> float:
        """Seconds a token at ``depth`` (0.0 unmeasured); below the latest chunk, never less
        than the cheapest token timed."""
        if not self.points:
            return 0.0
        x, y = self.points[-1]
        return max(y + self.slope * (depth - x), min(y for _, y in self.points))

    def seconds(self, depth: int, tokens: int) -> float:
        """What a chunk of ``tokens`` after ``depth`` cells is expected to take."""
        return tokens * self.per_token(depth + tokens / 2)

    def tokens(self, depth: int, seconds: float, most: int) -> int:
        """The most tokens, in whole blocks, a chunk after ``depth`` cells computes within
        ``seconds`` (0: not a block), at most ``most``: ``most`` unmeasured. A token's cost
        grows along the chunk by the slope: n x cost + slope x n^2 / 2 = seconds."""
        cost = self.per_token(depth)
        if cost <= 0:
            return most
        if seconds <= 0:
            return 0
        slope = self.slope
        fits = seconds / cost if slope == 0 else (sqrt(cost * cost + 2 * slope * seconds) - cost) / slope
        return most if fits >= most else int(fits) // BLOCK * BLOCK


class Scheduler:
    def __init__(self, admission: Admission, n_batch: int, n_ubatch: int) -> None:
        self.admission = admission
        self.n_batch = n_batch  # a step's tokens beside generating streams
        self.n_ubatch = n_ubatch  # a prompt chunk's tokens while no stream generates
        self.pace = Pace()  # what a prompt token costs by its depth, timed by the executor
        self.chunk_seconds = CHUNK_SECONDS  # a step's prompt chunks' time (tests: inf, by tokens alone)
        self.media: Media | None = None  # a vision model's projector (media.py)

    def media_ready(self, request: Request) -> bool:
        """Whether ``request``'s next chunk can be fed: text, or an image span whose rows are
        computed. At its first image not ready, every later image of it is asked for too
        (one encode after the other on the media thread, while its text and others step)."""
        span = request.span_at(request.fed)
        if span is None:
            return True
        assert self.media is not None  # spans are made only where there is a projector
        ready = self.media.ready(span)
        if not ready:
            for later in request.spans:
                if later.start > span.start:
                    self.media.ready(later)
        return ready

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
        chunk ends), the shortest prompt left first, all of them within ``CHUNK_SECONDS`` as
        the pace expects (the first at least ``MIN_CHUNK``: every step moves a prompt on)."""
        budget = self.n_batch if rows else self.n_ubatch
        room, seconds = budget - rows, self.chunk_seconds
        chunks: list[tuple[Request, int]] = []
        for request in sorted(self.admission.running.values(), key=lambda request: len(request.prompt) - request.fed):
            if room <= 0:
                break
            if request.fed == len(request.prompt) or request.awaits is not None or request.reading is not None:
                continue
            if request.spans and not self.media_ready(request):
                continue  # its image's rows are being computed (media.py): the others step meanwhile
            paced = room
            if budget >= MIN_CHUNK:  # a smaller budget bounds a chunk's time already
                paced = self.pace.tokens(request.fed, seconds, room)
                if chunks and paced < MIN_CHUNK:
                    continue
                paced = max(paced, MIN_CHUNK)
            end = self.chunk_end(request, min(room, paced), budget)
            if end > request.fed:
                chunks.append((request, end))
                room -= end - request.fed
                seconds -= self.pace.seconds(request.fed, end - request.fed)
        return chunks

    def chunk_end(self, request: Request, room: int, budget: int) -> int:
        """Where this step's chunk of the prompt ends: within one canonical part (prefixes.py),
        never leaving less than ``BLOCK`` of the part to a later chunk, and not at all when
        the ``room`` left in the step (or what the pace expects within its seconds: two
        blocks or more, so a part's rest is never left too short to be cut) would make a
        short chunk of a longer part. With a ``budget`` under a block, as far as there is room."""
        fed = request.fed
        span = request.span_at(fed)
        if span is not None and span.whole:
            return span.end  # decoded in one piece, whatever the room (media.py: it fits a decode)
        edge = request.edge(fed)  # an image's edge: a chunk is all text or all its rows (media.py)
        if not request.canonical(self.admission.exact_reuse):
            # Any chunks; cut only where a session's start is kept on disk (admission.py).
            end = min(edge, fed + room)
            return request.split if fed < request.split < end and self.admission.first_part_to_disk(request) else end
        part_end = min(request.split if fed < request.split else len(request.prompt), edge)
        end = min(part_end, fed + room)
        if end == part_end or budget < BLOCK:
            return end
        if part_end - end < BLOCK:
            end = part_end - BLOCK
        return end if end - fed >= BLOCK else fed
