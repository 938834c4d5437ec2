"""Mistral: after any text, ``[TOOL_CALLS]`` and then either a JSON array of calls
``[{"name": ..., "arguments": {...}, "id": ...}]`` (Mistral 7B v0.3, Nemo, Small 3.1), or
``name[ARGS]{...}`` per call, each after its own ``[TOOL_CALLS]`` (Small 3.2, Devstral,
Magistral: their templates print ``[ARGS]``; ``[CALL_ID]id`` before it is skipped). Its
templates want tool call ids of 9 letters and digits: OpenAI's are mapped to such ids."""

from __future__ import annotations

from ....json.types import Json
from .base import Content, Event, Parser, StepParser, ToolFormat, short_id, until_marker
from .json_calls import JsonCalls, JsonValue

TOOL_CALLS, ARGS, CALL_ID = "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"
# A function's name is at most 64 characters (OpenAI's limit): longer is no call.
MAX_NAME = 64


class Mistral(ToolFormat):
    name = "mistral"
    markers = (TOOL_CALLS, ARGS, CALL_ID)

    @classmethod
    def detect(cls, template: str) -> bool:
        return TOOL_CALLS in template and ARGS not in template

    def history(self, messages: list[Json]) -> list[Json]:
        converted = []
        for message in super().history(messages):
            if message.get("tool_calls"):
                message = {**message, "tool_calls": [{**call, "id": short_id(call["id"])} for call in message["tool_calls"]]}
            elif message.get("tool_call_id"):
                message = {**message, "tool_call_id": short_id(message["tool_call_id"])}
            converted.append(message)
        return converted

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import call_rules, literal

        calls = 'call ("," " "? call)*' if parallel else "call"
        return f'root ::= {literal(TOOL_CALLS)} " "? "[" {calls} "]"\n' + call_rules(tools, "arguments")

    def parser(self, names: set[str]) -> Parser:
        return MistralCalls(names)


class MistralArgs(Mistral):
    name = "mistral-args"

    @classmethod
    def detect(cls, template: str) -> bool:
        return TOOL_CALLS in template and ARGS in template

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import literal, named_arguments

        calls, rules = named_arguments(tools, lambda name: name + ARGS)
        return f"root ::= {'named+' if parallel else 'named'}\nnamed ::= {literal(TOOL_CALLS)} {calls}\n" + rules


class MistralCalls(StepParser):
    """Text until ``[TOOL_CALLS]``, then the calls in either form; text after them dropped."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(names, "content")  # -> marked -> (call <-> separator) | (name -> arguments -> next)
        self.value = JsonValue()  # the arguments being read (a new one for each call's)
        self.given_back = ""  # the text since the marker, given back if it is no call

    def finish(self) -> list[Event]:
        if self.state == "content":
            return [Content(self.buffer)]
        if self.calls == 0 and self.state in ("marked", "name"):
            return [Content(self.given_back + self.buffer)]
        if self.calls == 0 and self.state == "call":
            tail = self.call.give_up()
            return [Content(self.given_back + tail)] if tail else []
        return []

    def _step(self, events: list[Event]) -> bool:
        state = self.state
        if state == "content":
            before, marker, self.buffer = until_marker(self.buffer, (TOOL_CALLS,))
            events.append(Content(before))
            if marker is None:
                return False
            self.state, self.given_back = "marked", TOOL_CALLS
        elif state == "marked":
            head = self.buffer.lstrip()
            if not head:
                return False
            if head.startswith("["):
                self.given_back += self.buffer[: len(self.buffer) - len(head) + 1]
                self.buffer, self.state, self.call = head[1:], "call", JsonCalls(self.names, ("arguments",))
            else:
                self.state = "name"
        elif state == "name":
            return self._name(events)
        elif state == "arguments":
            if not self._arguments(events, self.value):
                return False
            self.state = "next"
        elif state == "next":  # another [TOOL_CALLS]name[ARGS]... or the end
            head = self.buffer.lstrip()
            if head.startswith(TOOL_CALLS):
                self.buffer, self.state = head[len(TOOL_CALLS) :], "name"
            elif not head or TOOL_CALLS.startswith(head):
                return False
            else:
                self.state = "after"
        elif state == "call":
            return self._call_step(events, self.given_back, "separator")
        else:  # separator: "," another call, "]" the end
            head = self.buffer.lstrip()
            if not head:
                return False
            self.buffer = head[1:]
            self.state = "call" if head[0] == "," else "after"
            self.call = JsonCalls(self.names, ("arguments",))
        return True

    def _name(self, events: list[Event]) -> bool:
        """``name[ARGS]`` (or ``name[CALL_ID]id[ARGS]``): the call, its arguments next."""
        before, marker, rest = until_marker(self.buffer, (ARGS, CALL_ID))
        if marker == CALL_ID:  # the call's id, up to [ARGS]: not ours to keep
            if ARGS not in rest:
                return False
            rest = rest.split(ARGS, 1)[1]
        name = before.strip()
        if marker is None and len(self.buffer) <= MAX_NAME + len(CALL_ID):
            return False
        return self._named(events, name, rest, self.given_back, marker is not None, JsonValue())
