"""What every tool-call format shares: the interface, and the pieces its parser is made of.

A format (one module per model family) says how its template is recognised, how OpenAI
messages become what its template reads, the grammar of a forced call in its syntax, and how
its answers read as text, a call's name, its arguments. Its parser is incremental: it takes
the answer as it streams, in pieces cut anywhere, and tells what it can be sure of (``Content``,
``Call``, ``Arguments``), holding back only what could still turn out otherwise (half a
marker, a name not yet closed). A whole answer is read the same way, in one piece
(``read_answer``), so a streamed answer and the whole one always say the same.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ....json.types import Json



@dataclass(frozen=True)
class Content:
    text: str


@dataclass(frozen=True)
class Call:
    name: str


@dataclass(frozen=True)
class Arguments:
    text: str  # more of the current call's arguments (JSON text)


@dataclass(frozen=True)
class Reasoning:
    text: str  # the model's reasoning (reasoning/: a <think> block, gpt-oss's analysis channel)


Event = Content | Call | Arguments | Reasoning


class Parser(ABC):
    """An answer read as it streams. ``feed`` and ``finish`` return what became certain
    (``StepParser`` below is what the formats' parsers are made of)."""

    @abstractmethod
    def feed(self, text: str) -> list[Event]:
        """What ``text``, the answer's next piece, made certain."""

    def finish(self) -> list[Event]:
        return []

    @property
    def thinking(self) -> bool:
        """Whether the text fed last ended inside the model's reasoning (its tokens are
        ``reasoning_tokens``)."""
        return False


class ToolFormat(ABC):
    """One model family's tool calling (see the module docstring)."""

    name: ClassVar[str]
    # Special tokens its answers are made of, which the engine must show as text (it drops
    # control tokens' text otherwise).
    markers: ClassVar[tuple[str, ...]] = ()
    # Its syntax shapes every answer (channels), not only calls: parsed with or without tools.
    always: ClassVar[bool] = False
    # Its prompt writes the tools itself (its template prints none: DeepSeek V3.1's): chosen
    # whether or not the template renders the tools it is given.
    writes_tools: ClassVar[bool] = False

    @classmethod
    def detect(cls, template: str) -> bool:
        """Whether ``template`` (a chat template's text) is this family's."""
        return False

    def prompt(self, messages: list[Json], tools: list[Json] | None, choice: Any) -> tuple[list[Json], list[Json] | None]:
        """The messages and tools the chat template renders. Natively: the tools as they are,
        and the history as the family's templates read it."""
        return self.history(messages), tools or None

    def history(self, messages: list[Json]) -> list[Json]:
        """OpenAI's messages as Hugging Face templates read them: a call's arguments as an
        object, a tool message with the name of the function it answers."""
        names = {call["id"]: call["function"]["name"] for message in messages for call in message.get("tool_calls") or ()}
        converted = []
        for message in messages:
            if message.get("tool_calls"):
                message = {**message, "tool_calls": [with_object_arguments(call) for call in message["tool_calls"]]}
            elif message["role"] == "tool" and message.get("tool_call_id") in names:
                message = {**message, "name": names[message["tool_call_id"]]}
            converted.append(message)
        return converted

    @abstractmethod
    def grammar(self, tools: list[Json], parallel: bool) -> str:
        """The GBNF of an answer that is only calls of ``tools`` in this format (tool_choice
        required or named; runs in the engine process)."""

    @abstractmethod
    def parser(self, names: set[str]) -> Parser:
        """A parser of one answer that may call the functions ``names``."""

    def typed_parser(self, names: set[str], tools: list[Json] | None) -> Parser:
        """``parser``, given the offered ``tools`` too: formats that write each argument's
        value as raw text (xml_calls.py) type the values by the parameters' schemas."""
        return self.parser(names)


def with_object_arguments(call: Json) -> Json:
    """A tool call whose arguments (OpenAI's JSON text) are an object, as templates print them
    with ``tojson``; text that is no JSON stays text."""
    arguments = call["function"].get("arguments")
    try:
        arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        pass
    return {**call, "function": {**call["function"], "arguments": arguments}}


def one_call_per_message(messages: list[Json]) -> list[Json]:
    """Assistant messages with several calls as one message per call, for templates that
    print only one (Llama 3.x raises, gpt-oss takes the first)."""
    split = []
    for message in messages:
        calls = message.get("tool_calls") or []
        if len(calls) < 2:
            split.append(message)
            continue
        split.append({**message, "tool_calls": calls[:1]})
        split.extend({"role": "assistant", "content": "", "tool_calls": [call]} for call in calls[1:])
    return split


def short_id(call_id: str, length: int = 9) -> str:
    """A stable alphanumeric id of ``length`` for ``call_id`` (Mistral's templates want 9)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest(), "big")
    return "".join(alphabet[(number >> (6 * i)) % len(alphabet)] for i in range(length))


# --- pieces of parsers ----------------------------------------------------------------------


def held_prefix(text: str, markers: tuple[str, ...]) -> int:
    """How long an end of ``text`` could be the start of one of ``markers``: what a parser
    must hold back until the next piece says."""
    best = 0
    for marker in markers:
        for length in range(min(len(marker) - 1, len(text)), best, -1):
            if text.endswith(marker[:length]):
                best = length
                break
    return best


def find_marker(text: str, markers: tuple[str, ...]) -> tuple[int, str] | None:
    """The first of ``markers`` in ``text``: (where, which)."""
    found = [(index, marker) for marker in markers if (index := text.find(marker)) >= 0]
    return min(found) if found else None


def until_marker(text: str, markers: tuple[str, ...]) -> tuple[str, str | None, str]:
    """``text`` up to the first of ``markers``: (what comes before, the marker, what follows);
    without one, (what is certainly not one, None, the end that might still become one)."""
    found = find_marker(text, markers)
    if found:
        index, marker = found
        return text[:index], marker, text[index + len(marker) :]
    keep = held_prefix(text, markers)
    return text[: len(text) - keep], None, text[len(text) - keep :]


class ValueReader(Protocol):
    """A JSON value read as it comes (``json_calls.JsonValue``)."""

    started: bool
    done: bool

    def take(self, text: str) -> int:
        """How much of ``text`` belongs to the value (all of it unless it ends there)."""
        ...


class StepParser(Parser):
    """A parser that moves through states over what has come (``buffer``), one step at a
    time (``_step``: False when it needs more text). Its calls so far are counted; once they
    are done, what follows is dropped (state ``after``)."""

    def __init__(self, names: set[str], state: str) -> None:
        self.names = names
        self.buffer = ""
        self.state = state
        self.calls = 0
        self.call: Any = None  # the JSON call being read (json_calls.JsonCalls), if any
        self.value: Any = None  # the arguments being read (a ValueReader), if any

    def feed(self, text: str) -> list[Event]:
        self.buffer += text
        events: list[Event] = []
        while self.state != "after" and self._step(events):
            pass
        if self.state == "after":
            self.buffer = ""
        return events

    @abstractmethod
    def _step(self, events: list[Event]) -> bool:
        """One step over the buffer, its events appended to ``events``; False when it needs more text."""

    def _read_call(self, events: list[Event]) -> str:
        """The buffer fed to the JSON call being read: "more" (it wants more text), "done"
        (the buffer is now what follows it) or "rejected" (the buffer is all its text)."""
        found, status, self.buffer = self.call.feed(self.buffer)
        if status != "rejected":
            events.extend(found)
        if status == "done":
            self.calls += 1
        return status

    def _call_step(self, events: list[Event], given_back: str, then: str) -> bool:
        """A step of the JSON call being read: on to state ``then`` once it is whole, or
        ``given_back`` (and its text) as text if it is no call."""
        status = self._read_call(events)
        if status == "rejected":
            self._reject(events, given_back)
        elif status == "more":
            return False
        else:
            self.state = then
        return True

    def _arguments(self, events: list[Event], value: ValueReader) -> bool:
        """More of the current call's arguments (the JSON ``value`` being read) from the
        buffer; True once they are whole."""
        if not value.started:
            self.buffer = self.buffer.lstrip()
        taken = value.take(self.buffer)
        if taken:
            events.append(Arguments(self.buffer[:taken]))
        self.buffer = self.buffer[taken:]
        return value.done

    def _named(self, events: list[Event], name: str, rest: str, given_back: str, whole: bool, value: ValueReader) -> bool:
        """A call's name read (``whole``: its separator came) with ``rest`` after it: the
        call begun and its arguments read next (``value``), or, a name not offered, no call."""
        if not whole or name not in self.names:
            self._reject(events, given_back)
            return True
        events.append(Call(name))
        self.calls += 1
        self.buffer, self.state, self.value = rest, "arguments", value
        return True

    def _reject(self, events: list[Event], given_back: str) -> None:
        """What looked like a call is none: text (``given_back`` and the buffer, read again
        as text) if nothing was called before, else the end of the calls."""
        if self.calls:
            self.state = "after"
        else:
            events.append(Content(given_back))
            self.state = "content"


class TaggedCalls(StepParser):
    """Text, then calls each between an opening and a closing tag (a missing closing tag is
    forgiven); what follows the calls is dropped. What is inside a tag is the format's
    (``_open``, then ``_inside`` until it sets the state to ``close``)."""

    opening: ClassVar[str]
    closing: ClassVar[str]

    def __init__(self, names: set[str]) -> None:
        super().__init__(names, "content")  # -> inside -> close -> between -> inside ... | after

    def _step(self, events: list[Event]) -> bool:
        if self.state == "content":
            before, marker, self.buffer = until_marker(self.buffer, (self.opening,))
            events.append(Content(before))
            if marker is None:
                return False
            self._open()
        elif self.state == "inside":
            return self._inside(events)
        else:  # close, between
            head = self.buffer.lstrip()
            expected = self.closing if self.state == "close" else self.opening
            if head.startswith(expected):
                self.buffer = head[len(expected) :]
                if self.state == "close":
                    self.state = "between"
                else:
                    self._open()
            elif expected.startswith(head):
                self.buffer = head
                return False  # may still come
            else:  # a call without its closing tag; text after the calls
                self.state = "between" if self.state == "close" else "after"
        return True

    def _open(self) -> None:
        self.state = "inside"

    @abstractmethod
    def _inside(self, events: list[Event]) -> bool:
        """A step inside a call's tags (the format's); the state ``close`` once the call is read."""
