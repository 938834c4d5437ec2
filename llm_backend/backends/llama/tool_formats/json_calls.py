"""Calls written as JSON objects, read as they stream: ``{"name": ..., "arguments": {...}}``
(Hermes/Qwen, Llama 3.x, Mistral's arrays) and a JSON value's extent (any format's
arguments), without parsing what is not whole yet."""

from __future__ import annotations

import json

from .base import Arguments, Call, Event


class JsonValue:
    """One JSON value read as it streams: how far it goes, without parsing it (a string's
    quotes and escapes and the nesting of brackets are all it tracks)."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.started = False
        self.scalar = False
        self.done = False

    def take(self, text: str) -> int:
        """How much of ``text`` belongs to the value (all of it unless it ends there)."""
        for index, char in enumerate(text):
            if not self.started:
                self.started = True
                self.in_string = char == '"'
                self.depth = 1 if char in "{[" else 0
                self.scalar = not (self.in_string or self.depth)  # a number, true, false, null
            elif self.scalar:
                if char in ",}] \t\r\n":
                    self.done = True
                    return index
            elif self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
                    if self.depth == 0:
                        self.done = True
                        return index + 1
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
                if self.depth == 0:
                    self.done = True
                    return index + 1
        return len(text)


class CallObject:
    """One call written as a JSON object, ``{"name": ..., "arguments": {...}}``, read as it
    streams: the name once its string has closed, the arguments as they come (an object's
    text as written; a JSON string holding the arguments, decoded once whole); keys in any
    order (arguments before the name wait for it), other keys skipped. ``failed`` when it
    turns out to be no call: not an object, or a first key that no call starts with."""

    def __init__(self, argument_keys: tuple[str, ...] = ("arguments", "parameters")) -> None:
        self.argument_keys = argument_keys
        self.state = "start"
        self.buffer = ""
        self.key: str | None = None
        self.value = JsonValue()
        self.arguments = ""  # the arguments' text so far
        self.name: str | None = None
        self.waiting: list[str] = []  # arguments that came before the name
        self.raw = ""  # everything taken, for a caller that must give it back as text
        self.keys = 0
        self.done = False
        self.failed = False

    def feed(self, text: str) -> tuple[list[Event], str]:
        """Events, and what follows the object once it has ended ("" until then)."""
        events: list[Event] = []
        self.buffer += text
        while self.buffer and not (self.done or self.failed):
            if not self._step(events):
                break
        rest = self.buffer if self.done else ""
        if self.done:
            self.buffer = ""
        return events, rest

    def _step(self, events: list[Event]) -> bool:
        """One step of the object; False when it needs more text."""
        if not (self.state == "value" and self.value.started):
            stripped = self.buffer.lstrip()
            self._take(len(self.buffer) - len(stripped))
            if not stripped:
                return False
        char = self.buffer[0]
        if self.state == "start":
            self.failed = char != "{"
            self._take(1)
            self.state = "key"
        elif self.state == "key":
            if char == "}":
                self._take(1)
                self.done = True
                return True
            key, end = _json_string(self.buffer)
            if end is None:
                return False
            if key is None or (self.keys == 0 and key not in ("name", "type", "id", *self.argument_keys)):
                self.failed = True
                return True
            self._take(end)
            self.key, self.keys, self.state = key, self.keys + 1, "colon"
        elif self.state == "colon":
            self.failed = char != ":"
            self._take(1)
            self.state, self.value = "value", JsonValue()
        elif self.state == "comma":
            self._take(1)
            self.done = char == "}"
            self.failed = char not in "},"
            self.state = "key"
        elif self.key == "name":
            return self._name(events)
        else:
            self._value(events)
        return True

    def _name(self, events: list[Event]) -> bool:
        name, end = _json_string(self.buffer)
        if end is None:
            return False
        if name is None:
            self.failed = True
            return True
        self._take(end)
        self.name = name
        events.append(Call(name))
        events.extend(Arguments(text) for text in self.waiting)
        self.waiting = []
        self.state = "comma"
        return True

    def _value(self, events: list[Event]) -> None:
        taken = self._take(self.value.take(self.buffer))
        if self.value.done:
            self.state = "comma"
        if self.key not in self.argument_keys:
            return
        self.arguments += taken
        if self.arguments[:1] in ("{", "["):
            self._emit(events, taken)  # an object streams as written
        elif self.value.done:  # a string holding the arguments, or null
            value = json.loads(self.arguments) if self.arguments.startswith('"') else self.arguments
            self._emit(events, "{}" if value == "null" else value)

    def _emit(self, events: list[Event], text: str) -> None:
        if not text:
            return
        if self.name is None:
            self.waiting.append(text)
        else:
            events.append(Arguments(text))

    def _take(self, count: int) -> str:
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        self.raw += taken
        return taken


def _json_string(text: str) -> tuple[str | None, int | None]:
    """A JSON string at the start of ``text``: (its value, where it ends); (None, None) while it
    has not closed; (None, 0) if ``text`` starts with something else."""
    if not text.startswith('"'):
        return None, 0
    escaped = False
    for index in range(1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            try:
                return json.loads(text[: index + 1]), index + 1
            except json.JSONDecodeError:
                return None, 0
    return None, None


class JsonCalls:
    """The calls of a parser that writes each as a JSON object (``CallObject``), one at a
    time: a call of a function not offered, or no call at all, is ``rejected`` with its text,
    which the parser gives back as content (if nothing was called before) or drops."""

    def __init__(self, names: set[str], argument_keys: tuple[str, ...] = ("arguments", "parameters")) -> None:
        self.names = names
        self.argument_keys = argument_keys
        self.call = CallObject(argument_keys)
        self.named = False

    def feed(self, text: str) -> tuple[list[Event], str, str]:
        """(events, "more" | "done" | "rejected", what follows the object when done, or all
        of its text when rejected)."""
        events, rest = self.call.feed(text)
        call = self.call
        if call.failed or any(isinstance(event, Call) and event.name not in self.names for event in events):
            return [], "rejected", call.raw + call.buffer + rest
        self.named = self.named or call.name is not None
        return events, ("done" if call.done else "more"), rest

    def give_up(self) -> str:
        """The text of a call the answer ended inside before its name: not a call."""
        return "" if self.named else self.call.raw + self.call.buffer
