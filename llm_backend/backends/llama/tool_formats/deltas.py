"""A format's parser as OpenAI's chat deltas, streamed or read whole (the same way)."""

from __future__ import annotations

import uuid

from .base import Call, Content, Event, Json, Parser


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


def read_answer(parser: Parser, text: str) -> tuple[str | None, list[Json]]:
    """A whole answer's content and OpenAI ``tool_calls``: read as a stream in one piece, so it
    says what the stream said."""
    stream = ToolCallStream(parser)
    content: list[str] = []
    calls: list[Json] = []
    for delta in stream.feed(text) + stream.finish():
        if "content" in delta:
            content.append(delta["content"])
            continue
        (entry,) = delta["tool_calls"]
        if "id" in entry:
            calls.append({"id": entry["id"], "type": "function", "function": dict(entry["function"])})
        else:
            calls[entry["index"]]["function"]["arguments"] += entry["function"]["arguments"]
    text = "".join(content)
    return (text if text or not calls else None), calls
