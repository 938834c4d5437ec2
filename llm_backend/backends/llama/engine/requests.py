"""What the engine knows of a request and of each of its choices (batching.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .drafts import Draft
from .sampling import Sampler, SamplingParams
from .text import TextStream
from .thinking import Thinking


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
    unsent: str = ""  # text released by this step's tokens, sent as one delta after the step
    finished: bool = False  # no more of its tokens are decoded
    ended: bool = False  # its last delta is sent (answers.py): with the overlapped step, after ``finished``
    draft: Draft | None = None  # where drafts come from: the prediction, or the prompt (drafts.py)
    drafted: list[tuple[int, int]] = field(default_factory=list)  # this step's drafts: (batch index, token)
    reported_tokens: int = 0  # of its completion tokens, those its deltas have counted
    thinking: Thinking | None = None  # its reasoning's budget (thinking.py), if it has one


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
    reading: tuple[Any, Any, int] | None = None  # (future, file, length): its beginning, being read from disk
    prediction: list[int] | None = None  # the client's predicted output, as tokens
    reasoning_start: str | None = None  # a reasoning model's: inside a block the prompt opened, or not (reasoning/)
    # Without max_tokens, in a shared pool: each choice's share of output reserved, which it
    # may grow past while cells are free (admission.py); None: its max_tokens is reserved.
    share: int | None = None
    spans: list[Any] = field(default_factory=list)  # its images' positions (media.py ``Span``), in order

    def canonical(self, exact_reuse: bool) -> bool:
        """Whether it is computed in canonical parts and reuses only what leaves its bits as
        computed from nothing (prefixes.py; the model's ``exact_reuse``). A prompt with
        images is not: its chunks are cut at the images' edges too, which the canonical parts
        do not count, so it reuses every cached token and is chunked by room (as llama.cpp's
        server and vLLM do for every prompt)."""
        return exact_reuse and not self.spans

    def span_at(self, position: int) -> Any:
        """The image span holding prompt ``position``, or None (text)."""
        for span in self.spans:
            if span.start <= position < span.end:
                return span
        return None

    def edge(self, position: int) -> int:
        """Where the prompt's kind next changes after ``position`` (an image span starts or
        ends): a prompt chunk is all text or all one image's rows (scheduler.py)."""
        for span in self.spans:
            if position < span.start:
                return span.start
            if position < span.end:
                return span.end
        return len(self.prompt)

    @property
    def room(self) -> int:
        """Each choice's output reserved in the pool (admission.py)."""
        return self.share if self.share is not None else (self.max_tokens or 0)

    @property
    def reserve(self) -> int:
        """The KV cells reserved for it: its prompt, and each choice's output room."""
        return len(self.prompt) + self.n * self.room

    @property
    def limit(self) -> int:
        """How much of the prompt may come from a cache: all but the last token, whose logits
        start the answer; nothing when every prompt position must be scored (echo+logprobs)."""
        return 0 if self.prompt_logprobs is not None else len(self.prompt) - 1

    def usage(self) -> dict[str, int]:
        """Its ``usage`` event's counts. With a prediction, OpenAI's: accepted are the
        prediction's tokens that appeared in the answer, rejected the rest of them (a wrong
        prediction: all of it, whether or not any was drafted), and the rejected ones are
        billed as completion tokens ("counted in the total completion tokens for purposes
        of billing, output, and context window limits")."""
        drafts = [choice.draft for choice in self.choices if choice.draft is not None and choice.draft.counted]
        accepted = sum(draft.appeared for draft in drafts)
        rejected = sum(len(draft.tokens) for draft in drafts) - accepted
        counts = {
            "prompt_tokens": len(self.prompt),
            "cached_tokens": self.reused,
            "completion_tokens": sum(choice.completion_tokens for choice in self.choices) + rejected,
        }
        if self.prediction is not None:
            counts["accepted_prediction_tokens"] = accepted
            counts["rejected_prediction_tokens"] = rejected
        return counts
