"""Qwen3-Coder (llama.cpp reads Nemotron 3 Nano's and Step-3.5-Flash's calls the same way):
after any text, one block per call, each argument between tags and its value raw text on
lines of its own, as its template prints a call in the history::

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Oslo
    </parameter>
    </function>
    </tool_call>

A value's one leading and one trailing newline are the layout's, not the value's (llama.cpp
and vLLM drop them both). It ends at ``</parameter>``, or, where that is missing, at the next
``<parameter=`` or ``</function>`` on a line of its own (llama.cpp's test of a call without
it). llama.cpp ends a value only at a ``</parameter>`` on a line of its own, the Qwen team's
parser (vLLM's ``qwen3_coder``) wherever it stands, as here: a model that closes the value
on its own line (``Oslo</parameter>``, as small models forced to call do) is read, and a value
holding the tag mid-line (code about this very format) is cut there, as vLLM cuts it.

Values are typed by the parameters' schemas (xml_calls.py). The template reads a history
call's arguments as an object (it prints each) and the tool results as ``<tool_response>``
blocks in a user turn."""

from __future__ import annotations

from ....json.types import Json
from .base import Event, Parser, ToolFormat, until_marker
from .xml_calls import MAX_NAME, ArgumentTypes, XmlCalls, call_rules

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FUNCTION, FUNCTION_END = "<function=", "</function>"
PARAMETER, PARAMETER_END = "<parameter=", "</parameter>"
# Where a value ends: its closing tag (on a line of its own, or not, as the Qwen team's parser
# in vLLM reads it), or the next tag of the call on a line of its own when the model left the
# closing one out (llama.cpp's fallback).
VALUE_ENDS = ("\n" + PARAMETER_END, PARAMETER_END, "\n" + PARAMETER, "\n" + FUNCTION_END)


class Qwen3Coder(ToolFormat):
    name = "qwen3-coder"
    markers = (OPEN, CLOSE)

    @classmethod
    def detect(cls, template: str) -> bool:
        # llama.cpp's test (common/chat.cpp): Hermes's tag with the XML call inside it.
        return OPEN in template and FUNCTION in template and PARAMETER in template

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import literal

        # A string's raw text never holds </parameter> (the parser ends it there).
        calls, rules = call_rules(
            tools, lambda name: f"{FUNCTION}{name}>\n", lambda key: f"{PARAMETER}{key}>\n",
            PARAMETER_END, '"\\n"? ' + literal(PARAMETER_END + "\n"), f"{FUNCTION_END}\n",
        )
        block = " ".join((literal(OPEN + "\n"), calls, literal(CLOSE)))
        root = f'root ::= {block} ("\\n" {block})*' if parallel else f"root ::= {block}"
        return root + "\n" + rules

    def parser(self, names: set[str]) -> Parser:
        return Qwen3CoderCalls(names, ArgumentTypes(None))

    def typed_parser(self, names: set[str], tools: list[Json] | None) -> Parser:
        return Qwen3CoderCalls(names, ArgumentTypes(tools))


class Qwen3CoderCalls(XmlCalls):
    """Text, then ``<tool_call>`` ``<function=NAME>`` (``<parameter=KEY>`` value
    ``</parameter>``)* ``</function>`` ``</tool_call>`` per call."""

    opening, closing = OPEN, CLOSE

    def _inside(self, events: list[Event]) -> bool:
        if self.part == "name":
            return self._function(events)
        if self.part == "arguments":
            return self._parameter(events)
        if self.part == "newline":  # the line break after <parameter=KEY>, the layout's
            if not self.buffer:
                return False
            self.buffer, self.part = self.buffer.removeprefix("\n"), "value"
            return True
        end = self._value(events)
        if end is None:
            return False
        # After </parameter>, the next tag; or that tag already, its closing one left out.
        self.buffer, self.part = (self.buffer if end.endswith(PARAMETER_END) else end[1:] + self.buffer), "arguments"
        return True

    def _function(self, events: list[Event]) -> bool:
        """``<function=NAME>``: the call, if NAME was offered."""
        head = self.buffer.lstrip()
        if not head.startswith(FUNCTION):
            if FUNCTION.startswith(head):
                return False
            self._reject(events, OPEN)
            return True
        name, end, rest = until_marker(head[len(FUNCTION) :], (">",))
        if end is None and len(head) <= len(FUNCTION) + MAX_NAME:
            return False
        if end is None:
            self._reject(events, OPEN)
            return True
        return self._call(events, name, rest)

    def _parameter(self, events: list[Event]) -> bool:
        """``<parameter=KEY>`` (its value next), or the call's end."""
        head = self.buffer.lstrip()
        if head.startswith(PARAMETER):
            key, end, rest = until_marker(head[len(PARAMETER) :], (">",))
            if end is None and len(head) <= len(PARAMETER) + MAX_NAME:
                return False
            if end is not None:
                return self._key(events, key, rest, VALUE_ENDS, "newline")
        elif any(tag.startswith(head) for tag in (PARAMETER, FUNCTION_END)):
            return False
        # </function>, or anything else: the call ends (a missing </function> is forgiven)
        return self._end_call(events, head.removeprefix(FUNCTION_END))
