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

Sizes. A verification of k drafts costs one decode of k + 1 rows, in units of a one-token
step about ``STEP_COST`` + ``ROW_COST`` x (k + 1) (one stream, SmolLM2 on 2 cores, measured
loaded: 1.77 steps for 2 rows, 29 for 64; a quiet machine computes rows together 3-4x
faster than alone, loaded about 2.2x), and gives the tokens taken plus one. How many will be
taken follows from how often the answer's tokens were the source's, while aligned (each
token counts, drafted or not; the last ~20 weigh most; a prediction starts trusted, the
prompt not): the draft is the length that gives the most tokens per cost, and none when no
length beats decoding one token a step by ``MIN_GAIN`` (right 95 % of the time: 8 tokens;
99 % or more: 20; 60 %: none, until the answer follows the source again).

Beside other streams the rows of a draft slow every stream of the step: each row costs them
about what the step's own rows do. So beside others a draft earns ``SHARE`` of a row per row
the others decode, and is verified in one piece once it has earned ``MIN_CHUNK`` rows (the
decode's fixed cost spread over many rows): the others lose about ``SHARE`` of their speed
and the predicted stream gains up to ``SHARE`` x others tokens per step.
"""

from __future__ import annotations

from bisect import bisect_left

NGRAM = 3  # answer tokens that must match the source to align again after leaving it
MAX_DRAFT = 64
STEP_COST, ROW_COST = 0.8, 0.35  # a verification's cost in one-token steps (see above)
MIN_GAIN = 1.1  # tokens per step a draft must promise over decoding one by one
MAX_SHARE = 0.99
DECAY = 0.95  # weight of the past in how often the source was right, per token
# (right, compared) a source starts with: a prediction is mostly right (8 tokens first),
# the prompt is quoted now and then (2 tokens first).
PREDICTION_PRIOR = (19.0, 20.0)
LOOKUP_PRIOR = (3.0, 4.0)
SHARE = 1 / 14  # beside others: draft rows per row they decode (7 others: 0.5 rows a step)
MIN_CHUNK = 16  # beside others: rows earned before a draft is verified
LOOKUP_BESIDE = 1  # the prompt is drafted from only while at most this many others decode


class Draft:
    """One choice's source of drafts, its cursor, and what its drafts earned."""

    def __init__(self, tokens: list[int], counted: bool, aligned: bool = True) -> None:
        self.tokens = tokens
        self.counted = counted  # a prediction: usage accounts for its tokens (``appeared``)
        self.beside = None if counted else LOOKUP_BESIDE
        self.at: int | None = 0 if aligned else None  # the source token expected next
        self.last = 0  # where the cursor last was
        self.taken, self.tried = PREDICTION_PRIOR if counted else LOOKUP_PRIOR  # how often it was right
        self.credit = 0.0  # rows earned beside others
        self.pause = 0  # tokens to wait before drafting again
        self.alone = False  # the next step decodes the choice's token alone (verification.py)
        self.backoff = 1
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
            self.credit = min(self.credit + SHARE * others, MAX_DRAFT)
        if self.alone:
            self.alone = False
            return []
        if self.at is None or self.pause or self.at >= len(self.tokens):
            return []
        k = min(self.size, len(self.tokens) - self.at, room)
        if others:
            if self.credit < min(k, MIN_CHUNK):
                return []
            k = min(k, int(self.credit))
            self.credit -= k
        return self.tokens[self.at : self.at + k] if k > 0 else []

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
        # Never counted surer than 99 %: past 20 tokens a draft gains little (2.6x against
        # 2.7x at 64 for a perfect source) and an edit point wastes all its rows past it.
        share = min(self.taken / self.tried, MAX_SHARE)
        best, size = MIN_GAIN, 0
        for k in range(1, MAX_DRAFT + 1):
            expected = share * (1 - share**k) / (1 - share)  # drafts taken before the first wrong one
            gain = (expected + 1) / (STEP_COST + ROW_COST * (k + 1))
            if gain > best:
                best, size = gain, k
        return size

    def verified(self, drafted: int, accepted: int, tie: bool = False) -> None:
        """``accepted`` of the ``drafted`` tokens of a verification were taken; ``tie``: it
        stopped at a near tie (verification.py), which says nothing of the source."""
        if tie:
            return
        if accepted:
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
