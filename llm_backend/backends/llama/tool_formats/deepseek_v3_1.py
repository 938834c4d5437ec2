"""DeepSeek V3.1: after any text, the calls between special tokens,
each a name and its JSON arguments::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Oslo"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>

several chained inside one ``<｜tool▁calls▁begin｜>`` block, without separators. Read as
llama.cpp reads it (common/chat-parser.cpp, ``common_chat_parse_deepseek_v3_1``): the
opening token in the variants its distills were seen to write, a call's own opening token
optional, a name without ``<`` or a line break.

Its template prints no tools: the model card says where they go, a ``## Tools`` section
after the system prompt, which the format writes itself (``tool_description``: the card's
text, as vLLM's example template for V3.1 and ModelScope's swift print it; llama.cpp warns
that this template "does not natively describe tools" and falls back to its own words). The template prints a history call's arguments as the JSON text
OpenAI sends (it concatenates them), so they are passed as they are. Its reasoning
(``thinking``: off unless asked) is the deepseek-r1 reasoning family's (reasoning/)."""

from __future__ import annotations

import json
from typing import Any

from ....json.types import Json
from .base import Content, Event, Parser, StepParser, ToolFormat, until_marker
from .convention import with_system_text
from .json_calls import JsonValue

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
# The block's opening token as llama.cpp accepts it (the R1 distills wrote these variants).
OPENINGS = (CALLS_BEGIN, "<｜tool_calls_begin｜>", "<｜tool calls begin｜>", "<｜tool\\_calls\\_begin｜>", "<｜tool▁calls｜>")
MAX_NAME = 64


class DeepSeekV31(ToolFormat):
    name = "deepseek-v3.1"
    markers = (CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP)
    writes_tools = True

    @classmethod
    def detect(cls, template: str) -> bool:
        # llama.cpp's test (common/chat.cpp): V3.1's thinking prefix, in a template of
        # DeepSeek's call tokens.
        return CALLS_BEGIN in template and "message['prefix'] is defined and message['prefix'] and thinking" in template

    def prompt(self, messages: list[Json], tools: list[Json] | None, choice: Any) -> tuple[list[Json], list[Json] | None]:
        if tools:
            messages = with_system_text(messages, tool_description(tools))
        return messages, None  # the template would print nothing of them

    def history(self, messages: list[Json]) -> list[Json]:
        return messages  # its template reads OpenAI's messages as they are

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import literal, named_arguments

        calls, rules = named_arguments(tools, lambda name: CALL_BEGIN + name + SEP)
        return (
            f"root ::= {literal(CALLS_BEGIN)} {'call+' if parallel else 'call'} {literal(CALLS_END)}\n"
            f"call ::= {calls} {literal(CALL_END)}\n" + rules
        )

    def parser(self, names: set[str]) -> Parser:
        return DeepSeekCalls(names)


def tool_description(tools: list[Json]) -> str:
    """The tools as the model card writes them after the system prompt (DeepSeek-V3.1's
    README, "ToolCall"): a ``###`` section per tool, then the format to call them in
    (``{additional_tool_calls}`` is the card's own placeholder, kept as it prints it)."""
    sections = []
    for tool in tools:
        function = tool["function"]
        parameters = json.dumps(function.get("parameters") or {}, ensure_ascii=False)
        sections.append(f"### {function['name']}\nDescription: {function.get('description') or ''}\n\nParameters: {parameters}\n")
    return (
        "## Tools\nYou have access to the following tools:\n\n" + "\n".join(sections)
        + "\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
        f"{CALLS_BEGIN}{CALL_BEGIN}tool_call_name{SEP}tool_call_arguments{CALL_END}{{additional_tool_calls}}{CALLS_END}\n\n"
        "Where:\n\n"
        "- `tool_call_name` must be an exact match to one of the available tools\n"
        "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
        "- For multiple tool calls, chain them directly without separators or spaces"
    )


class DeepSeekCalls(StepParser):
    """Text until the block's opening token, then ``[<｜tool▁call▁begin｜>]NAME<｜tool▁sep｜>``
    JSON ``<｜tool▁call▁end｜>`` per call until ``<｜tool▁calls▁end｜>``; text after it dropped."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(names, "content")  # -> calls -> name -> arguments -> end -> calls ... | after
        self.value = JsonValue()
        self.given_back = ""  # the text since the opening token, given back if it is no call

    def finish(self) -> list[Event]:
        if self.state == "content":
            return [Content(self.buffer)]
        if self.calls == 0 and self.state in ("calls", "name"):
            return [Content(self.given_back + self.buffer)]
        return []

    def _step(self, events: list[Event]) -> bool:
        if self.state == "content":
            before, opening, self.buffer = until_marker(self.buffer, OPENINGS)
            events.append(Content(before))
            if opening is None:
                return False
            self.state, self.given_back = "calls", opening
        elif self.state == "calls":  # a call's opening token (optional), or the block's end
            head = self.buffer.lstrip()
            if not head or any(token.startswith(head) and token != head for token in (CALL_BEGIN, CALLS_END)):
                return False
            if head.startswith(CALLS_END):
                self.state = "after"
                return True
            self.given_back += self.buffer[: len(self.buffer) - len(head)]
            if head.startswith(CALL_BEGIN):
                self.given_back += CALL_BEGIN
                head = head[len(CALL_BEGIN) :]
            self.buffer, self.state = head, "name"
        elif self.state == "name":
            return self._name(events)
        elif self.state == "arguments":
            if not self._arguments(events, self.value):
                return False
            self.state = "end"
        else:  # end: the call's closing token (a missing one is forgiven), then the next
            head = self.buffer.lstrip()
            if not head or (CALL_END.startswith(head) and head != CALL_END):
                return False
            self.buffer, self.state = head.removeprefix(CALL_END), "calls"
        return True

    def _name(self, events: list[Event]) -> bool:
        """``NAME<｜tool▁sep｜>``: the call, if NAME was offered; its arguments next."""
        name, sep, rest = until_marker(self.buffer, (SEP,))
        if sep is None and len(self.buffer) <= MAX_NAME + len(SEP) and not any(char in name for char in "<\n"):
            return False
        return self._named(events, name.strip(), rest, self.given_back, sep is not None, JsonValue())
