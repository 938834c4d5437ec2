"""Hermes and Qwen (2.5, 3): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, one
block per call, after any text. Hermes 2 Pro writes ``arguments`` before ``name``; both come.
Also the parser of the convention for models without a tool template (convention.py)."""

from __future__ import annotations

from ....json.types import Json
from .base import Content, Event, Parser, TaggedCalls, ToolFormat
from .json_calls import JsonCalls

OPEN, CLOSE = "<tool_call>", "</tool_call>"


class Hermes(ToolFormat):
    name = "hermes"
    markers = (OPEN, CLOSE)
    # The newlines around the JSON that its templates write (Qwen's: <tool_call>\n{...}\n</tool_call>).
    around_call = '"\\n"?'

    @classmethod
    def detect(cls, template: str) -> bool:
        return OPEN in template

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import call_rules, literal

        block = f"{literal(OPEN)} {self.around_call} call {self.around_call} {literal(CLOSE)}"
        root = f'root ::= {block} ("\\n" {block})*' if parallel else f"root ::= {block}"
        return root + "\n" + call_rules(tools, "arguments")

    def parser(self, names: set[str]) -> Parser:
        return HermesCalls(names)


class HermesCalls(TaggedCalls):
    """Text, then ``<tool_call>`` JSON ``</tool_call>`` per call."""

    opening, closing = OPEN, CLOSE

    def finish(self) -> list[Event]:
        if self.state == "content":
            return [Content(self.buffer)]
        if self.state == "inside" and not self.calls:
            return [Content(OPEN + self.call.give_up())]
        return []

    def _open(self) -> None:
        self.state, self.call = "inside", JsonCalls(self.names)

    def _inside(self, events: list[Event]) -> bool:
        return self._call_step(events, OPEN, "close")  # no call after all: the tag and what followed are text
