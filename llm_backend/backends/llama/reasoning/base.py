"""What every reasoning family shares: the interface, and the ``<think>`` splitter.

A family (one module each, beside tool_formats/) says how its chat template is recognised,
what the template's own switch is called (``enable_thinking``, gpt-oss's
``reasoning_effort``) and what it does with reasoning passed back in the history. Its
answers are split into reasoning and content before the tool format reads the content:
``ThinkSplit`` for the families that write ``<think>…</think>``; gpt-oss writes channels,
which its tool format reads (tool_formats/gpt_oss.py: the analysis channel is reasoning).

The split follows llama.cpp's ``--reasoning-format deepseek`` (common/chat-parser.cpp,
``try_parse_reasoning``): the reasoning is stripped of surrounding whitespace, the blanks
after ``</think>`` are skipped, an unclosed block is all reasoning, and where the prompt
opened the block (``thinking_forced_open``) the answer starts inside it (an opening tag the
model writes again is dropped, as vLLM's ``deepseek_r1`` parser drops it). It is
incremental and holds back only what could still be half a tag or trailing blanks, so a
stream cut anywhere says what the whole answer says.
"""

from __future__ import annotations

from typing import ClassVar

from ....json.types import Json
from ..tool_formats.base import until_marker


# The thinking-token budget of each effort (docs/MODELS.md): past it the engine closes the
# block and the model answers (engine/answers.py). None: the template's default, unbounded.
# ``none`` and ``minimal`` close the block at once where the template cannot switch
# thinking off (DeepSeek-R1's opens it in every prompt).
BUDGETS = {"none": 0, "minimal": 0, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
EFFORTS_OFF = ("none", "minimal")


class ReasoningFormat:
    """One model family's reasoning (see the module docstring)."""

    name: ClassVar[str]
    opening: ClassVar[str] = "<think>"
    closing: ClassVar[str] = "</think>"
    # The thinking budget's view (engine/thinking.py): what opens and closes the reasoning
    # in the answer's text, and what is written to close it when the budget is spent.
    budget_opening: ClassVar[str] = "<think>"
    budget_closing: ClassVar[str] = "</think>"
    budget_close: ClassVar[str] = "\n</think>\n\n"

    @classmethod
    def detect(cls, template: str) -> bool:
        return False

    def template_kwargs(self, effort: str | None) -> Json:
        """What the chat template is given for ``effort`` (its own switch); the template's
        default when no effort is asked."""
        return {}

    def thinks(self, effort: str | None) -> bool:
        """Whether an answer at ``effort`` reasons (so has a thinking budget)."""
        return True

    def history(self, messages: list[Json]) -> list[Json]:
        """Assistant messages' ``reasoning_content`` as the template reads it (by default:
        under that name, as Qwen3's and vLLM's templates read it)."""
        return messages

    def start(self, prompt: str) -> str:
        """Where an answer to ``prompt`` starts: ``open`` (the prompt opened the block) or
        ``start`` (the answer may open one)."""
        tail = prompt.rstrip()
        return "open" if tail.endswith(self.opening) else "start"

    def splitter(self, start: str) -> "ThinkSplit | None":
        return ThinkSplit(self.opening, self.closing, start == "open")


class ThinkSplit:
    """An answer's text as ``("reasoning", text)`` and ``("content", text)`` pieces, fed as
    it streams (see the module docstring)."""

    def __init__(self, opening: str, closing: str, opened: bool) -> None:
        self.opening, self.closing = opening, closing
        # start: may open a block; open: inside one the prompt opened (an opening tag may
        # come again); reasoning; after: blanks after the block; content.
        self.state = "open" if opened else "start"
        self.buffer = ""
        self.blanks = ""  # reasoning's trailing whitespace, sent only if more reasoning follows
        self.said = False  # whether any reasoning text was sent (leading whitespace is not)

    @property
    def thinking(self) -> bool:
        return self.state in ("open", "reasoning")

    def feed(self, text: str) -> list[tuple[str, str]]:
        self.buffer += text
        pieces: list[tuple[str, str]] = []
        while self._step(pieces):
            pass
        return [piece for piece in pieces if piece[1]]

    def finish(self) -> list[tuple[str, str]]:
        pieces: list[tuple[str, str]] = []
        if self.state == "start":
            pieces.append(("content", self.buffer))
        elif self.state in ("open", "reasoning"):
            self._reason(pieces, self.buffer.rstrip())  # an unclosed block is all reasoning
        elif self.state == "content":
            pieces.append(("content", self.buffer))
        self.buffer = ""
        return [piece for piece in pieces if piece[1]]

    def _reason(self, pieces: list[tuple[str, str]], text: str) -> None:
        if not self.said:
            text = text.lstrip()
        if not text:
            return
        body = text.rstrip()
        if body:
            pieces.append(("reasoning", self.blanks + body))
            self.said = True
            self.blanks = text[len(body) :]
        else:
            self.blanks += text

    def _step(self, pieces: list[tuple[str, str]]) -> bool:
        if self.state in ("start", "open"):
            head = self.buffer.lstrip()
            if head.startswith(self.opening):
                self.buffer, self.state = head[len(self.opening) :], "reasoning"
            elif self.opening.startswith(head):
                return False  # blanks, or half the tag: may still open
            elif self.state == "open":
                self.state = "reasoning"
            else:
                self.state = "content"
            return True
        if self.state == "reasoning":
            before, marker, self.buffer = until_marker(self.buffer, (self.closing,))
            # Trailing blanks wait: they are dropped if the block closes after them.
            self._reason(pieces, before)
            if marker is None:
                return False
            self.state, self.blanks = "after", ""
            return True
        if self.state == "after":
            head = self.buffer.lstrip()
            if not head:
                self.buffer = ""
                return False
            self.buffer, self.state = head, "content"
            return True
        pieces.append(("content", self.buffer))  # content
        self.buffer = ""
        return False


__all__ = ["BUDGETS", "EFFORTS_OFF", "ReasoningFormat", "ThinkSplit"]
