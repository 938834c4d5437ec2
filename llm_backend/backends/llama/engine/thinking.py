"""A reasoning answer's thinking budget (reasoning/base.py ``BUDGETS``), kept by the engine:
when a choice has thought for its budget of tokens and is still inside its reasoning, its
next tokens are the family's closing text instead of what was sampled (``</think>`` and the
blank line the templates put after it; gpt-oss's end of the analysis message and the final
channel's header), and the model answers from there. The same as llama.cpp's reasoning
budget (``--reasoning-budget``) and vLLM's ``thinking_token_budget``, for any budget.

Only where nothing else steers the tokens: a grammar (a forced call, a JSON answer) or
drafts (a prediction) would not accept a token the sampler did not choose.
"""

from __future__ import annotations


class Thinking:
    """One choice's reasoning as its tokens come: whether it is inside the block, how many
    tokens it has taken, and the closing tokens still to put in."""

    def __init__(self, opening: str, closing: str, close_tokens: list[int], opened: bool, budget: int) -> None:
        self.opening, self.closing = opening, closing
        self.close_tokens = close_tokens
        self.state = "inside" if opened else "start"  # start -> inside -> done
        self.tail = ""  # the text since the block opened, as far as a closing tag could reach
        self.tokens = 0
        self.budget = budget
        self.forced: list[int] = []

    def token(self, sampled: int) -> int:
        """The token this choice takes: the sampled one, or the next of the closing text."""
        if not self.forced and self.state == "inside" and self.tokens >= self.budget:
            self.forced = list(self.close_tokens)
        if self.forced:
            token = self.forced.pop(0)
            if not self.forced:
                self.state = "done"
            return token
        return sampled

    def saw(self, text: str) -> None:
        """The text the token taken stands for."""
        if self.state == "done":
            return
        if self.state == "start":
            head = (self.tail + text).lstrip()
            if head.startswith(self.opening):
                self.state, self.tail = "inside", head[len(self.opening) :]
            elif self.opening.startswith(head):
                self.tail = head
            else:
                self.state = "done"  # the answer did not open a block
            return
        self.tokens += 1
        self.tail = (self.tail + text)[-(len(self.closing) + len(text)) :]
        if self.closing in self.tail and not self.forced:
            self.state = "done"
