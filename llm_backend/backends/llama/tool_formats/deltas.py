"""A format's parser as OpenAI's chat deltas, streamed or read whole (the same way).

Reasoning (reasoning/) is given as ``reasoning_content``, the name DeepSeek's API and
llama.cpp's ``--reasoning-format deepseek`` use and the agents read, and as ``reasoning``,
vLLM's newer name for it: the same text under both."""

from __future__ import annotations

import uuid

from ....json.types import Json
from .base import Call, Content, Event, Parser, Reasoning


class ToolCallStream:
    """A format's parser as OpenAI's chat deltas: ``{"content": ...}`` and ``{"tool_calls":
    [...]}`` the way OpenAI streams them (a call's id, type and name first, then its
    arguments in fragments). Trailing whitespace waits for what follows it (no blanks before
    the calls, whatever the pieces), and text after the calls is dropped (a model that made up a tool's
    answer after calling it)."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.calls = 0
        self.spaces = ""

    @property
    def called(self) -> bool:
        return self.calls > 0

    def feed(self, text: str) -> list[Json]:
        return self._deltas(self.parser.feed(text))

    def finish(self) -> list[Json]:
        deltas = self._deltas(self.parser.finish())
        if self.spaces and not self.calls:
            deltas.append({"content": self.spaces})
        self.spaces = ""
        return deltas

    def _deltas(self, events: list[Event]) -> list[Json]:
        deltas: list[Json] = []
        for event in events:
            if isinstance(event, Content):
                if self.calls or not event.text:
                    continue
                text = self.spaces + event.text
                body = text.rstrip()
                if body:
                    deltas.append({"content": body})
                self.spaces = text[len(body) :]
            elif isinstance(event, Reasoning):
                if event.text:
                    deltas.append(reasoning_delta(event.text))
            elif isinstance(event, Call):
                self.spaces = ""
                call_id = "call_" + uuid.uuid4().hex[:24]
                deltas.append({"tool_calls": [
                    {"index": self.calls, "id": call_id, "type": "function", "function": {"name": event.name, "arguments": ""}}
                ]})
                self.calls += 1
            elif event.text:
                deltas.append({"tool_calls": [{"index": self.calls - 1, "function": {"arguments": event.text}}]})
        return deltas


def reasoning_delta(text: str) -> Json:
    return {"reasoning_content": text, "reasoning": text}


def read_answer(parser: Parser, text: str) -> tuple[str | None, list[Json]]:
    """A whole answer's content and OpenAI ``tool_calls``: read as a stream in one piece, so it
    says what the stream said."""
    content, calls, _ = read_message(parser, text)
    return content, calls


def read_message(parser: Parser, text: str) -> tuple[str | None, list[Json], str]:
    """A whole answer's content, ``tool_calls`` and reasoning, read as ``read_answer`` reads."""
    stream = ToolCallStream(parser)
    return assembled(stream.feed(text) + stream.finish())


def assembled(deltas: list[Json]) -> tuple[str | None, list[Json], str]:
    """An answer's deltas as its content (None for calls alone), calls and reasoning."""
    content: list[str] = []
    calls: list[Json] = []
    reasoning: list[str] = []
    for delta in deltas:
        if "reasoning_content" in delta:
            reasoning.append(delta["reasoning_content"])
            continue
        if "content" in delta:
            content.append(delta["content"])
            continue
        (entry,) = delta["tool_calls"]
        if "id" in entry:
            calls.append({"id": entry["id"], "type": "function", "function": dict(entry["function"])})
        else:
            calls[entry["index"]]["function"]["arguments"] += entry["function"]["arguments"]
    text = "".join(content)
    return (text if text or not calls else None), calls, "".join(reasoning)
