"""gpt-oss (OpenAI's harmony format): an answer is messages, each a header, ``<|message|>``
and a body ending at ``<|end|>`` (then ``<|start|>assistant`` and the next), ``<|call|>`` or
``<|return|>``. The header names the channel, ``<|channel|>analysis`` (reasoning: given as
``reasoning_content``, reasoning/gpt_oss.py), ``final`` (the answer) or ``commentary``, and a recipient
``to=functions.NAME`` for a call, whose body is its JSON arguments (``<|constrain|>json``).
Every answer is written so, with tools or without: it is always read as channels.
Its template prints one call per assistant message: several are split."""

from __future__ import annotations

import re

from ....json.types import Json
from .base import Arguments, Call, Content, Event, Parser, Reasoning, StepParser, ToolFormat, one_call_per_message, until_marker

CHANNEL, MESSAGE, END, START, CALL, RETURN, CONSTRAIN = (
    "<|channel|>", "<|message|>", "<|end|>", "<|start|>", "<|call|>", "<|return|>", "<|constrain|>"
)
BODY_ENDS = (END, CALL, RETURN)
_CHANNEL = re.compile(re.escape(CHANNEL) + r"\s*(\w+)")
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")
# A header is a few words: past this without <|message|>, the answer is not in channels.
MAX_HEADER = 512


class GptOss(ToolFormat):
    name = "gpt-oss"
    markers = (CHANNEL, MESSAGE, END, START, CALL, RETURN, CONSTRAIN)
    always = True

    @classmethod
    def detect(cls, template: str) -> bool:
        return CHANNEL in template

    def history(self, messages: list[Json]) -> list[Json]:
        return super().history(one_call_per_message(messages))

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import literal, named_arguments

        calls, rules = named_arguments(tools, lambda name: f"{name} {CONSTRAIN}json{MESSAGE}")
        # Reasoning first if the model wants it (text without "<|"), then the call: one per
        # answer, as the format has it (the call token ends the turn).
        return (
            f"root ::= analysis? {literal(CHANNEL + 'commentary to=functions.')} {calls}\n"
            f"analysis ::= {literal(CHANNEL + 'analysis' + MESSAGE)} thought {literal(END + START + 'assistant')}\n"
            'thought ::= ([^<] | "<" [^|])*\n' + rules
        )

    def parser(self, names: set[str]) -> Parser:
        return Channels(names)


class Channels(StepParser):
    def __init__(self, names: set[str]) -> None:
        super().__init__(names, "header")  # -> body -> next -> header ... | plain
        self.kind = "hidden"  # what the body is: content | call | reasoning | hidden

    @property
    def thinking(self) -> bool:
        return self.state == "body" and self.kind == "reasoning"

    def finish(self) -> list[Event]:
        if self.state == "plain" or (self.state == "body" and self.kind != "hidden"):
            return [self._body(self.buffer)] if self.buffer else []
        return []

    def _body(self, text: str) -> Event:
        if self.kind == "content":
            return Content(text)
        return Reasoning(text) if self.kind == "reasoning" else Arguments(text)

    def _step(self, events: list[Event]) -> bool:
        if self.state == "plain":  # a model that writes no channels: all of it is the answer
            events.append(Content(self.buffer))
            self.buffer = ""
            return False
        if self.state == "header":
            header, marker, rest = until_marker(self.buffer, (MESSAGE,))
            if marker is None:
                starts = (CHANNEL, " to=", "to=", CONSTRAIN)
                if not any(self.buffer.startswith(s) or s.startswith(self.buffer) for s in starts) or len(self.buffer) > MAX_HEADER:
                    self.state = "plain"
                    return True
                return False
            self.buffer, self.state = rest, "body"
            channel = _CHANNEL.search(header)
            recipient = _RECIPIENT.search(header)
            if recipient is not None:
                name = recipient.group(1).removeprefix("functions.")
                self.kind = "call" if name in self.names and recipient.group(1).startswith("functions.") else "hidden"
                if self.kind == "call":
                    events.append(Call(name))
            else:
                kinds = {"final": "content", "commentary": "content", "analysis": "reasoning"}
                self.kind = kinds.get(channel.group(1), "hidden") if channel else "hidden"
        elif self.state == "body":
            body, marker, self.buffer = until_marker(self.buffer, BODY_ENDS)
            if body and self.kind != "hidden":
                events.append(self._body(body))
            if marker is None:
                return False
            self.state = "next" if marker == END else "after"  # <|call|>, <|return|>: the turn ends
        elif self.state == "next":  # <|start|>assistant, then the next message's header
            head = self.buffer
            for part in (START, "assistant"):
                if head.startswith(part):
                    head = head[len(part) :]
                elif part.startswith(head):
                    return False
            self.buffer, self.state = head, "header"
        return True
