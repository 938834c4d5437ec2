"""Drafts: tokens an answer will probably go on with, verified by the model in one decode.

A choice's drafts come from one source: the client's prediction (OpenAI's predicted
outputs), or, when the model enables it, the request's own prompt (prompt lookup: an
answer that quotes its prompt). Only ever the request's own text: no n-gram pool is shared
between requests or tenants (llama.cpp's server shares one across its slots).

Alignment. The source is read at a cursor: the token the answer should produce next. Each
token the answer produces moves the cursor on if it is the one there; otherwise the answer
left the source (an edit), and the cursor is found again where the answer's last ``NGRAM``
tokens occur in the source, the first such place at or after the last aligned one (else the
nearest before): the rest of a file still serves after an edit in its middle. A prediction
starts aligned at its first token; the prompt starts unaligned.

Sizes, from what the device measures. A verification of k drafts costs one decode of k + 1
rows and gives the tokens taken plus one. What a decode of r rows costs is the engine's
measure (``StepCosts``: the executor records every step's decode by its rows); until it has
measured, the figures of 2 cores: one row alone 1, r rows together ``STEP_COST`` +
``ROW_COST`` x r (SmolLM2, measured loaded: 1.77 for 2 rows, 29 for 64). A GPU computes rows
nearly free (an H200: 17 rows in 1.65 steps, 64 in 1.15-1.52), and there drafts grow long;
on the CPU they stay as they were. How many will be taken follows from how often the
answer's tokens were the source's, while aligned (each token counts, drafted or not; the
last ~20 weigh most; a prediction starts trusted, the prompt not): the draft is the length
that gives the most tokens per cost, and none when no length beats decoding one token a step
by ``MIN_GAIN`` (on 2 cores: right 95 % of the time, 8 tokens; 99 % or more, 20; 60 %,
none, until the answer follows the source again). And while the last verifications gave
fewer tokens than the steps they cost, the drafts pause, longer each time until they pay
again: a wrong prediction costs a few tries, not a share of every step.

Beside other streams the rows of a draft slow every stream of the step. On 2 cores each row
costs them about what the step's own rows do, so there a draft earns ``SHARE`` of a row per
row the others decode (they lose ~5 % at seven), and is verified in one piece once it has
earned ``MIN_CHUNK`` rows (the decode's fixed cost spread over many rows). Where the device
measured a row cheaper against the step, it earns rows faster in proportion, costing the
others the same share of their time.

Exactness (``exact_rows``, the model setting ``prediction_exact``: exactness.py): where the
device was measured to compute up to R rows of one sequence bitwise as it computes them one
at a time, drafts never exceed R rows, and a greedy answer is the plain one bit for bit.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

NGRAM = 3  # answer tokens that must match the source to align again after leaving it
# 62 drafts: a verification of 63 rows. 2 cores (AVX-512, Q4_1) compute 64 rows or more of a
# sequence otherwise than alone (every row's logits moved, up to 1.5); fewer, bit for bit
# (with flash attention; without it, not even 2 rows: exactness.py).
MAX_DRAFT = 62
STEP_COST, ROW_COST = 0.8, 0.35  # a decode of r rows together, in one-row steps, on 2 cores
MIN_GAIN = 1.1  # tokens per step a draft must promise over decoding one by one
MAX_SHARE = 0.99
DECAY = 0.95  # weight of the past in how often the source was right, per token
# (right, compared) a source starts with: a prediction is mostly right (8 tokens first),
# the prompt is quoted now and then (2 tokens first).
PREDICTION_PRIOR = (19.0, 20.0)
LOOKUP_PRIOR = (3.0, 4.0)
# (clear, checked) rows verified start with: no near tie, weighing as 20 rows (verification.py).
CLEAR_PRIOR = (20.0, 20.0)
PAID_DECAY = 0.5  # weight of the past in what verifications gave and cost, per verification
SHARE = 1 / 14  # beside others, at 2 cores' costs: draft rows per row they decode
MIN_CHUNK = 16  # beside others: rows earned before a draft is verified
LOOKUP_BESIDE = 1  # the prompt is drafted from only while at most this many others decode

# Decode sizes timed apart (a timing counts for the first at or above its rows).
BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
ALPHA = 0.1  # weight of a new timing in its size's estimate
REFRESH = 32  # timings between two updates of what drafts read (a new size: at once)
# A size not timed in this many decodes is estimated from the others again (a machine loaded
# for a while made rows dear, and drafts stopped: they come back to be timed anew).
STALE = 2048


def _default(rows: float) -> float:
    return 1.0 if rows <= 1 else STEP_COST + ROW_COST * rows


class StepCosts:
    """What a decode costs on this device by its rows, as the engine measures it; and how
    many rows it computes bitwise as alone (``exact_rows``, None: not probed). One per
    engine, shared by its drafts; the executor calls ``record`` after each step's decode."""

    def __init__(self) -> None:
        self.exact_rows: int | None = None
        self._rows = [0.0] * len(BUCKETS)  # per size: the timings' rows and seconds, averaged
        self._seconds = [0.0] * len(BUCKETS)
        self._when = [0] * len(BUCKETS)  # the timing's number when each size was last timed
        self._points: list[tuple[float, float]] = []  # what estimates read: (rows, seconds)
        self._count = self._fresh = 0
        self.memo: dict[tuple[Any, ...], Any] = {}  # estimates and draft sizes, until an update

    def record(self, rows: int, seconds: float) -> None:
        """A decode of ``rows`` rows took ``seconds`` (to its logits: on a GPU, synchronized)."""
        if rows < 1 or seconds <= 0:
            return
        i = min(bisect_left(BUCKETS, rows), len(BUCKETS) - 1)
        self._count += 1
        new = self._count - self._when[i] > STALE or not self._seconds[i]
        if new:
            self._rows[i], self._seconds[i] = float(rows), seconds
        else:
            self._rows[i] += ALPHA * (rows - self._rows[i])
            self._seconds[i] += ALPHA * (seconds - self._seconds[i])
        self._when[i] = self._count
        self._fresh += 1
        if new or self._fresh >= REFRESH:
            self._fresh = 0
            self._points, top = [], 0.0
            for x, y, when in zip(self._rows, self._seconds, self._when):
                if y and self._count - when <= STALE:  # more rows never cost less: a dip is noise
                    top = max(top, y)
                    self._points.append((x, top))
            self.memo.clear()

    @property
    def timed(self) -> int:
        """How many decodes were recorded."""
        return self._count

    def cost(self, rows: int, base: int = 1) -> float:
        """A decode of ``rows`` rows over one of ``base`` rows."""
        key = ("cost", rows, base)
        if key not in self.memo:
            self.memo[key] = self._estimate(rows) / self._estimate(base)
        return self.memo[key]

    def exact(self, rows: int) -> bool:
        """Whether a decode of ``rows`` rows of one sequence is bitwise its rows alone."""
        return self.exact_rows is not None and rows <= self.exact_rows

    def _estimate(self, rows: int) -> float:
        """Seconds (or the defaults' units, unmeasured): between two sizes measured, on the
        line through them; past the largest, on the line from the smallest (a GPU's flat
        costs are not taken for granted beyond what it ran); otherwise the defaults' shape."""
        points = self._points
        if not points:
            return _default(rows)
        (x0, y0), (xn, yn) = points[0], points[-1]
        if len(points) == 1 or rows <= x0:
            return y0 * _default(rows) / _default(x0)
        if rows >= xn:
            return yn + max(yn - y0, 0.0) / (xn - x0) * (rows - xn)
        at = bisect_left(points, (rows, 0.0))
        (xa, ya), (xb, yb) = points[at - 1], points[at]
        return ya + (yb - ya) * (rows - xa) / (xb - xa)

    def best_size(self, share: float) -> int:
        """The draft giving the most tokens per cost, one stream alone (0: none pays)."""
        key = ("size", round(share, 3))
        if key not in self.memo:
            best, size = MIN_GAIN, 0
            for k in range(1, MAX_DRAFT + 1):
                expected = share * (1 - share**k) / (1 - share)  # taken before the first wrong one
                gain = (expected + 1) / self.cost(k + 1)
                if gain > best:
                    best, size = gain, k
            self.memo[key] = size
        return self.memo[key]

    def pace(self, others: int) -> float:
        """Rows a draft earns a step beside ``others`` sequences: ``SHARE`` a row of theirs at
        the defaults' costs, more where a row costs less of their step."""
        key = ("pace", others)
        if key not in self.memo:
            n = others + 1

            def row_share(cost: Any) -> float:  # what a draft row adds to a step of n rows
                return max((cost(n + MIN_CHUNK) - cost(n)) / (MIN_CHUNK * cost(n)), 1e-3)

            self.memo[key] = SHARE * others * row_share(_default) / row_share(self._estimate)
        return self.memo[key]


class Draft:
    """One choice's source of drafts, its cursor, and what its drafts earned."""

    def __init__(self, tokens: list[int], counted: bool, aligned: bool = True, costs: StepCosts | None = None) -> None:
        self.tokens = tokens
        self.counted = counted  # a prediction: usage accounts for its tokens (``appeared``)
        self.costs = costs if costs is not None else StepCosts()  # the engine's (measured)
        self.beside = None if counted else LOOKUP_BESIDE
        self.at: int | None = 0 if aligned else None  # the source token expected next
        self.last = 0  # where the cursor last was
        self.taken, self.tried = PREDICTION_PRIOR if counted else LOOKUP_PRIOR  # how often it was right
        self.clear, self.checked = CLEAR_PRIOR  # how often a row verified was no near tie (verification.py)
        self.credit = 0.0  # rows earned beside others
        self.pause = 0  # tokens to wait before drafting again
        self.alone = False  # the next step decodes the choice's token alone (verification.py)
        self.backoff = 1
        self.step_cost = 0.0  # the last proposal's step over a step without it
        self.gained = self.spent = 0.0  # tokens the last verifications gave, steps they cost
        self.tail: list[int] = []  # the answer's last NGRAM tokens
        self._index: dict[tuple[int, ...], list[int]] | None = None
        # A prediction's tokens that appeared in the answer, by place (usage: ``appeared``).
        self._appeared = bytearray(len(tokens)) if counted else bytearray()

    def propose(self, room: int, others: int) -> list[int]:
        """The tokens to verify in this step, at most ``room``, while ``others`` other
        sequences decode in it; none: decode one token as usual."""
        if others:
            if self.beside is not None and others > self.beside:
                return []
            self.credit = min(self.credit + self.costs.pace(others), MAX_DRAFT)
        if self.alone:
            self.alone = False
            return []
        if self.at is None or self.pause or self.at >= len(self.tokens):
            return []
        k = min(self.size, len(self.tokens) - self.at, room)
        if self.costs.exact_rows is not None:
            k = min(k, self.costs.exact_rows - 1)
        if others:
            if self.credit < min(k, MIN_CHUNK):
                return []
            k = min(k, int(self.credit))
            self.credit -= k
        if k <= 0:
            return []
        self.step_cost = self.costs.cost(others + 1 + k, others + 1)
        return self.tokens[self.at : self.at + k]

    def follow(self, token: int) -> None:
        """The answer went on with ``token``."""
        self.tail = (self.tail + [token])[-NGRAM:]
        if self.pause:
            self.pause -= 1
        if self.at is not None and self.at < len(self.tokens):
            right = self.tokens[self.at] == token
            self.taken, self.tried = DECAY * self.taken + right, DECAY * self.tried + 1
            if right:
                self._mark(self.at, self.at + 1)
                self.at += 1
                self.last = self.at
                return
        self.at = self._realign()
        if self.at is not None:
            self.last = self.at
            self._mark(self.at - NGRAM, self.at)  # the answer's last tokens, found here

    @property
    def size(self) -> int:
        """How many tokens to draft: the most tokens per cost, or 0 (see the docstring)."""
        # Never counted surer than 99 %: an edit point wastes every row past it. A near tie
        # ends a verification as a wrong draft does.
        return self.costs.best_size(min(self.taken / self.tried, MAX_SHARE) * self.clear / self.checked)

    def verified(self, drafted: int, accepted: int, tie: bool = False) -> None:
        """``accepted`` of the ``drafted`` tokens of a verification were taken; ``tie``: it
        stopped at a near tie (verification.py: that row's token is decided alone in the next
        step), which says nothing of the source but as much of what drafts give: text full
        of near ties (a poem: 19 of 64 tokens) is decoded one by one. Fewer tokens than the
        steps it cost, the last few together: no drafts for a while, twice as long each time."""
        rows = accepted + 1
        self.clear = DECAY**rows * self.clear + rows - tie
        self.checked = DECAY**rows * self.checked + rows
        cost, self.step_cost = self.step_cost or self.costs.cost(drafted + 1), 0.0
        self.gained = PAID_DECAY * self.gained + rows - tie
        self.spent = PAID_DECAY * self.spent + cost
        if self.gained >= self.spent:
            self.backoff = 1
        else:
            self.pause, self.backoff = self.backoff, min(2 * self.backoff, MAX_DRAFT)

    @property
    def appeared(self) -> int:
        """How many of a prediction's tokens appeared in the answer, in its order (each place
        once, however often the answer came back to it): OpenAI's accepted prediction
        tokens; the rest are its rejected ones."""
        return self._appeared.count(1)

    def _mark(self, start: int, end: int) -> None:
        if self._appeared:
            self._appeared[max(start, 0) : end] = b"\x01" * (end - max(start, 0))

    def _realign(self) -> int | None:
        if len(self.tail) < NGRAM:
            return None
        if self._index is None:
            self._index = {}
            for end in range(NGRAM, len(self.tokens)):
                self._index.setdefault(tuple(self.tokens[end - NGRAM : end]), []).append(end)
        places = self._index.get(tuple(self.tail))
        if not places:
            return None
        after = bisect_left(places, self.last)
        return places[after] if after < len(places) else places[-1]
