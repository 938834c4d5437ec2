"""An answer read in one pass: the family's reasoning split off first (base.ThinkSplit),
its content then read by the tool format (calls, gpt-oss's channels) or taken as it is.
One ``tool_formats`` parser, so tool_formats/deltas.py streams reasoning, content and
calls the same way whether the answer is streamed or whole."""

from __future__ import annotations

from ..tool_formats.base import Content, Event, Parser, Reasoning
from . import named


class ThinkingParser(Parser):
    """``split``'s reasoning as ``Reasoning`` events, its content fed to ``inner`` (or given
    as ``Content`` when nothing reads it)."""

    def __init__(self, split, inner: Parser | None) -> None:
        self.split = split
        self.inner = inner

    @property
    def thinking(self) -> bool:
        return self.split.thinking

    def feed(self, text: str) -> list[Event]:
        return self._events(self.split.feed(text))

    def finish(self) -> list[Event]:
        events = self._events(self.split.finish())
        return events + (self.inner.finish() if self.inner is not None else [])

    def _events(self, pieces: list[tuple[str, str]]) -> list[Event]:
        events: list[Event] = []
        for kind, text in pieces:
            if kind == "reasoning":
                events.append(Reasoning(text))
            elif self.inner is not None:
                events.extend(self.inner.feed(text))
            else:
                events.append(Content(text))
        return events


def answer_parser(family_name: str | None, start: str | None, tools: Parser | None) -> Parser | None:
    """The parser of one answer: ``tools`` (the tool format's, or None) behind the reasoning
    family's split, where the family has one; None when the text is taken as it is."""
    family = named(family_name)
    split = family.splitter(start or "start") if family is not None else None
    if split is None:
        return tools
    return ThinkingParser(split, tools)


__all__ = ["ThinkingParser", "answer_parser"]
