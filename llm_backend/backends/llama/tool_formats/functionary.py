"""Functionary v3.1 (MeetKai, on Llama 3.1): ``<function=NAME>{...}</function>`` per call, after
any text. (Its v3.2, ``>>>NAME`` segments, is not read here: such a model gets the
convention.)"""

from __future__ import annotations

from ....json.types import Json
from .base import Call, Content, Event, Parser, TaggedCalls, ToolFormat, until_marker
from .json_calls import JsonValue

OPEN, CLOSE = "<function=", "</function>"
MAX_NAME = 64


class Functionary(ToolFormat):
    name = "functionary"

    @classmethod
    def detect(cls, template: str) -> bool:
        return OPEN in template and "<|start_header_id|>" in template

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import literal, named_arguments

        calls, rules = named_arguments(tools, lambda name: name + ">")
        return f"root ::= {'call+' if parallel else 'call'}\ncall ::= {literal(OPEN)} {calls} {literal(CLOSE)}\n" + rules

    def parser(self, names: set[str]) -> Parser:
        return FunctionCalls(names)


class FunctionCalls(TaggedCalls):
    """Text, then ``<function=`` NAME ``>`` JSON ``</function>`` per call."""

    opening, closing = OPEN, CLOSE

    def __init__(self, names: set[str]) -> None:
        super().__init__(names)
        self.value: JsonValue | None = None  # the arguments, once the name is read

    def finish(self) -> list[Event]:
        if self.state == "content" or (self.state == "inside" and self.value is None and not self.calls):
            return [Content((OPEN if self.state == "inside" else "") + self.buffer)]
        return []

    def _open(self) -> None:
        self.state, self.value = "inside", None

    def _inside(self, events: list[Event]) -> bool:
        if self.value is None:  # the name, up to ">"
            name, marker, rest = until_marker(self.buffer, (">",))
            if marker is None and len(self.buffer) <= MAX_NAME:
                return False
            if marker is None or name not in self.names:
                self._reject(events, OPEN)
                return True
            events.append(Call(name))
            self.calls += 1
            self.buffer, self.value = rest, JsonValue()
            return True
        if not self._arguments(events, self.value):
            return False
        self.state = "close"
        return True
