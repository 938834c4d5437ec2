"""GLM-4.5 and GLM-4.6 (Z.ai): after any text, one block per call, the function's name
then each argument as a key and a value between tags, the value raw text, as its template
prints a call in the history::

    <tool_call>get_weather
    <arg_key>city</arg_key>
    <arg_value>Oslo</arg_value>
    </tool_call>

Values are typed by the parameters' schemas and taken as written, blanks included
(xml_calls.py; llama.cpp reads them up to ``</arg_value>``, untrimmed). The template reads a
history call's arguments as an object (it raises on text) and tool results after
``<|observation|>``.

GLM thinks first by default: ``\\n<think>…</think>\\n`` opens its answers whatever the
request (its template's ``enable_thinking`` off writes an empty block into the prompt
instead). No reasoning family here knows its template, so the format splits that block off
itself, with the reasoning families' splitter (reasoning/), and reads every answer so, with
tools or without; a reasoning family for it (its switch, a budget, reasoning_tokens) would
take the block first, leaving the format the content."""

from __future__ import annotations

from ....json.types import Json
from .base import Event, Parser, ToolFormat, until_marker
from .xml_calls import MAX_NAME, ArgumentTypes, XmlCalls, call_rules

OPEN, CLOSE = "<tool_call>", "</tool_call>"
KEY, KEY_END, VALUE, VALUE_END = "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"
THINK, THINK_END = "<think>", "</think>"
# What ends a call's name: its line, its first argument, or the call (one without arguments).
NAME_ENDS = ("\n", KEY, CLOSE)


class Glm(ToolFormat):
    name = "glm"
    markers = (OPEN, CLOSE, KEY, KEY_END, VALUE, VALUE_END, THINK, THINK_END)
    always = True  # the thinking block opens every answer

    @classmethod
    def detect(cls, template: str) -> bool:
        # llama.cpp's test (common/chat.cpp): GLM's prompt prefix and its argument tags.
        return "[gMASK]<sop>" in template and KEY in template and VALUE in template

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import literal

        calls, rules = call_rules(
            tools, lambda name: name + "\n", lambda key: f"{KEY}{key}{KEY_END}\n{VALUE}",
            VALUE_END, literal(VALUE_END + "\n"), "",
        )
        block = f"{literal(OPEN)} {calls} {literal(CLOSE)}"
        root = f'root ::= {block} ("\\n" {block})*' if parallel else f"root ::= {block}"
        return root + "\n" + rules

    def parser(self, names: set[str]) -> Parser:
        return self.typed_parser(names, None)

    def typed_parser(self, names: set[str], tools: list[Json] | None) -> Parser:
        # Imported here: reasoning/ reads tool_formats/base.py as the package loads.
        from ..reasoning.base import ThinkSplit
        from ..reasoning.stream import ThinkingParser

        return ThinkingParser(ThinkSplit(THINK, THINK_END, False), GlmCalls(names, ArgumentTypes(tools)))


class GlmCalls(XmlCalls):
    """Text, then ``<tool_call>NAME`` (``<arg_key>KEY</arg_key>`` ``<arg_value>`` value
    ``</arg_value>``)* ``</tool_call>`` per call."""

    opening, closing = OPEN, CLOSE

    def _inside(self, events: list[Event]) -> bool:
        if self.part == "name":  # up to its line's end, its first argument, or the call's end
            name, end, rest = until_marker(self.buffer, NAME_ENDS)
            if end is None and len(self.buffer) <= MAX_NAME:
                return False
            if end is None:
                self._reject(events, OPEN)
                return True
            return self._call(events, name, rest if end == "\n" else end + rest)
        if self.part == "arguments":
            return self._argument(events)
        if self.part == "key":
            return self._key_and_value(events)
        if self._value(events) is None:
            return False
        self.part = "arguments"
        return True

    def _argument(self, events: list[Event]) -> bool:
        """``<arg_key>`` (its key next), or the call's end."""
        head = self.buffer.lstrip()
        if head.startswith(KEY):
            self.buffer, self.part = head[len(KEY) :], "key"
            return True
        if KEY.startswith(head) or CLOSE.startswith(head):
            return False  # blanks, or half a tag
        return self._end_call(events, head)

    def _key_and_value(self, events: list[Event]) -> bool:
        """The key, up to ``</arg_key>``, then ``<arg_value>`` (its value next)."""
        key, end, rest = until_marker(self.buffer, (KEY_END,))
        if end is None:
            if len(self.buffer) > MAX_NAME + len(KEY_END):
                return self._end_call(events, "")  # no key after all: the call ends
            return False
        head = rest.lstrip()
        if not head.startswith(VALUE):
            if VALUE.startswith(head):
                return False  # blanks, or half the tag
            return self._end_call(events, head)
        return self._key(events, key, head[len(VALUE) :], (VALUE_END,))
