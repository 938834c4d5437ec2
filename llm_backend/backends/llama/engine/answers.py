"""The output stage: what a step's sampled tokens become for the client, and the events that
tell it (batching.py runs it beside the next decode, or after this one's sampling).

Sampling (executor.py) already decided what a token does to its choice that the next step
needs: whether it is the last (end of generation, the length limit) and its logprobs, read
before the next decode overwrites the logits; the record of it is a ``Taken``. Here it
becomes text: detokenized into the choice's ``TextStream`` (whole UTF-8 characters, stop
strings held back: text.py), the choice ended where a stop string is found, and the text a
decode released sent as one ``delta`` per choice (a verified draft gives several tokens in
one decode), with the logprobs of the tokens that made it: one entry per generated token,
its ``bytes`` the token's own (a token that holds part of a UTF-8 character shows it as
``\\xNN`` escapes in ``token``, as OpenAI's do), while the text is released in whole
characters only. A request whose every choice has ended gets its ``usage`` and ``done``,
and is metered (the engine's ``totals``).

A stop string is the one ending found here rather than at sampling. Run beside the next
decode, that decode already holds the choice's token: it ends the choice (``finished``), and
the executor drops that row's result and its KV cell (executor.py), so the answer and what
the sequence keeps are those of the order without overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .prompts import Tokenizer
from .requests import Choice, Request

Emit = Callable[[dict[str, Any]], None]


@dataclass
class Taken:
    """A token sampled for a choice, as sampling left it for the output stage."""

    request: Request
    choice: Choice
    token: int | None  # None: nothing generated (Completions' max_tokens 0)
    piece: bytes | None = None  # its bytes, where sampling needed them already (a thinking budget)
    end: str | None = None  # known at sampling: "eog" (the end of generation) or "length"
    pushed: bool = False  # its text is in the choice's stream already (a draft's: its stop known at once)


class Answers:
    def __init__(self, emit: Emit, tokenizer: Tokenizer, totals: dict[str, int]) -> None:
        self.emit = emit
        self.tokenizer = tokenizer
        self.totals = totals

    def finish(self, taken: list[Taken]) -> list[Request]:
        """One decode's tokens made text and sent: a delta per choice; the requests this
        ended, their usage and ``done`` sent (the engine then frees their sequences)."""
        choices: dict[int, Taken] = {}
        for item in taken:
            if not item.pushed:
                self.push(item)
            choices[id(item.choice)] = item
        requests: dict[str, Request] = {}
        for item in choices.values():
            self.send(item.request, item.choice)
            requests[item.request.rid] = item.request
        completed = [request for request in requests.values() if all(choice.ended for choice in request.choices)]
        for request in completed:
            self.complete(request)
        return completed

    def push(self, item: Taken) -> bool:
        """``item``'s text into its choice's answer; True while the choice goes on."""
        request, choice = item.request, item.choice
        if item.token is None:
            self.end(request, choice, "", "length")
            return False
        if item.end == "eog":
            self.end(request, choice, choice.text.flush(), "stop")
            return False
        released = choice.text.push(item.piece if item.piece is not None else self.tokenizer.piece(item.token))
        if released.stopped:
            self.end(request, choice, released.text, "stop")
            return False
        if item.end == "length":
            self.end(request, choice, released.text + choice.text.flush(), "length")
            return False
        choice.unsent += released.text
        return True

    def send(self, request: Request, choice: Choice) -> None:
        """The text this decode released, if any, as one delta."""
        if choice.unsent and not choice.ended:
            self.delta(request, choice, "")

    def cut(self, request: Request) -> None:
        """``request`` ends with ``length`` where it stands (the KV pool cannot hold it:
        admission.py); with its usage and ``done``."""
        for choice in request.choices:
            if not choice.ended:
                self.end(request, choice, choice.text.flush(), "length")
        self.complete(request)

    def echo(self, request: Request) -> None:
        """The prompt, once prefilled, before any of its answers' text (``echo``)."""
        self.emit({"id": request.rid, "event": "echo", "text": request.echo, "logprobs": request.prompt_logprobs})

    def end(self, request: Request, choice: Choice, text: str, reason: str) -> None:
        choice.finished = choice.ended = True
        choice.next_token = None  # not decoded, unless a decode running now holds it already
        self.delta(request, choice, text, reason)

    def delta(self, request: Request, choice: Choice, text: str, finish_reason: str | None = None) -> None:
        text, choice.unsent = choice.unsent + text, ""
        # How many tokens this text is (the API process counts reasoning tokens by them).
        event: dict[str, Any] = {
            "id": request.rid, "event": "delta", "index": choice.index, "text": text,
            "tokens": choice.completion_tokens - choice.reported_tokens,
        }
        choice.reported_tokens = choice.completion_tokens
        if request.sampling.logprobs:
            # Tokens whose text was held back (half a character, a possible stop string)
            # are reported with the text they finally produced; at the end, with none: as
            # OpenAI's, one entry per token counted in ``completion_tokens``, also for the
            # first bytes of a character the length limit cut (its text is dropped).
            event["logprobs"] = choice.held_logprobs if text or finish_reason else []
            choice.held_logprobs = []
        if finish_reason:
            event["finish_reason"] = finish_reason
        self.emit(event)

    def complete(self, request: Request) -> None:
        """Its usage, metered, and ``done``."""
        totals = self.totals
        totals["requests"] += 1
        totals["prompt_tokens"] += len(request.prompt)
        totals["reused_tokens"] += request.reused
        totals["cache_hits"] += 1 if request.reused else 0
        totals["generated_tokens"] += sum(choice.completion_tokens for choice in request.choices)
        self.emit({"id": request.rid, "event": "usage", **request.usage()})
        self.emit({"id": request.rid, "event": "done"})
