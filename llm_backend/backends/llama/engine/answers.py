"""What a generated token does to its choice's answer, and the events that tell the client.

A token ends the choice (end of generation, a stop string, its length or the context's), or
adds its text; the text a step released is sent as one ``delta`` after the step (a verified
draft gives several tokens in one step), with the logprobs of the tokens that made it:
one entry per generated token, its ``bytes`` the token's own (a token that holds part of
a UTF-8 character shows it as ``\\xNN`` escapes in ``token``, as OpenAI's do), while the
text is released in whole characters only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .prompts import Tokenizer
from .requests import Choice, Request
from .sampling import logits_at, token_logprobs

Emit = Callable[[dict[str, Any]], None]


class Answers:
    def __init__(self, emit: Emit, tokenizer: Tokenizer, ctx: Any, n_ctx: int) -> None:
        self.emit = emit
        self.tokenizer = tokenizer
        self.ctx = ctx
        self.n_ctx = n_ctx

    def take(self, request: Request, choice: Choice, token: int, logits_index: int) -> bool:
        """``token`` generated for ``choice`` from the logits at ``logits_index``; True while
        the choice goes on (then ``token`` is the next one to decode)."""
        if choice.thinking is not None:
            token = choice.thinking.token(token)  # past its budget: the closing text (thinking.py)
        if choice.draft is not None:
            choice.draft.follow(token)
        if self.tokenizer.is_eog(token):
            self.finish(request, choice, choice.text.flush(), "stop")
            return False
        if request.sampling.logprobs:
            choice.held_logprobs.append(self.logprob_entry(logits_index, token, request.sampling.top_logprobs))
        choice.completion_tokens += 1
        piece = self.tokenizer.piece(token)
        if choice.thinking is not None:
            choice.thinking.saw(piece.decode("utf-8", errors="ignore"))
        released = choice.text.push(piece)
        if released.stopped:
            self.finish(request, choice, released.text, "stop")
            return False
        if choice.completion_tokens >= (request.max_tokens or self.n_ctx) or len(request.prompt) + choice.completion_tokens >= self.n_ctx:
            self.finish(request, choice, released.text + choice.text.flush(), "length")
            return False
        choice.next_token = token
        choice.unsent += released.text
        return True

    def send(self, request: Request, choice: Choice) -> None:
        """The text this step released, if any, as one delta."""
        if choice.unsent and not choice.finished:
            self.delta(request, choice, "")

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

    def finish(self, request: Request, choice: Choice, text: str, reason: str) -> None:
        choice.finished = True
        choice.next_token = None
        self.delta(request, choice, text, reason)

    def logprob_entry(self, logits_index: int, token: int, top: int) -> dict[str, Any]:
        logits = logits_at(self.ctx, logits_index, self.tokenizer.n_vocab)
        logprob, best = token_logprobs(logits, token, top)

        def entry(t: int, lp: float) -> dict[str, Any]:
            piece = self.tokenizer.piece(t)
            return {"token": piece.decode("utf-8", errors="backslashreplace"), "logprob": lp, "bytes": list(piece)}

        return {**entry(token, logprob), "top_logprobs": [entry(t, lp) for t, lp in best]}
