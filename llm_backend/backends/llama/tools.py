"""Tool calling for local models that have no tool-calling template of their own.

The tools are described to the model in a system message, and it calls one by answering
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (the Hermes convention, which
small instruction models follow best). With ``tool_choice`` "required" or a named function
the engine constrains decoding to exactly that form (see ``grammar.py``), so the arguments
always parse. Here: the prompt side, and turning the model's text back into OpenAI
``tool_calls`` — whole, or as streaming deltas the way OpenAI sends them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

OPEN, CLOSE = "<tool_call>", "</tool_call>"

Json = dict[str, Any]


def tool_instructions(tools: list[Json], choice: Any) -> str:
    functions = [tool["function"] for tool in tools]
    lines = [
        "You can call functions. Available functions, as JSON schemas:",
        *(json.dumps(function, ensure_ascii=False) for function in functions),
        "To call a function, answer only with",
        f'{OPEN}{{"name": <function name>, "arguments": <arguments object>}}{CLOSE}',
    ]
    if choice == "required" or isinstance(choice, dict):
        lines.append("You must call a function now.")
    else:
        lines.append("If no function is needed, answer normally.")
    return "\n".join(lines)


def render_tool_history(messages: list[Json]) -> list[Json]:
    """Assistant tool calls and tool results as plain text turns any chat template accepts."""
    rendered = []
    for message in messages:
        if message.get("tool_calls"):
            calls = "".join(
                OPEN
                + json.dumps(
                    {"name": call["function"]["name"], "arguments": _loads_or_text(call["function"]["arguments"])},
                    ensure_ascii=False,
                )
                + CLOSE
                for call in message["tool_calls"]
            )
            rendered.append({"role": "assistant", "content": (message.get("content") or "") + calls})
        elif message["role"] == "tool":
            rendered.append(
                {
                    "role": "user",
                    "content": f"<tool_response id=\"{message.get('tool_call_id', '')}\">"
                    f"{message.get('content') or ''}</tool_response>",
                }
            )
        else:
            rendered.append(message)
    return rendered


def _loads_or_text(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except (TypeError, json.JSONDecodeError):
        return arguments


def _call(name: str, arguments: str) -> Json:
    return {"id": "call_" + uuid.uuid4().hex[:24], "type": "function", "function": {"name": name, "arguments": arguments}}


def _blocks(text: str) -> tuple[list[Any], str]:
    """The ``<tool_call>JSON</tool_call>`` blocks that ``text`` starts with, read the way the
    grammar writes them: one JSON value between the tags (so a tag inside one of its strings
    is only text), then the closing tag. Also what follows the last whole block."""
    decoder = json.JSONDecoder()
    values = []
    rest = text.lstrip()
    while rest.startswith(OPEN):
        body = rest[len(OPEN) :].lstrip()
        try:
            value, end = decoder.raw_decode(body)
        except json.JSONDecodeError:
            break
        after = body[end:].lstrip()
        if not after.startswith(CLOSE):
            break
        values.append(value)
        rest = after[len(CLOSE) :].lstrip()
    return values, rest


def _is_call(value: Any, names: set[str]) -> bool:
    return isinstance(value, dict) and value.get("name") in names


def parse_tool_calls(text: str, names: set[str], forced: bool = False) -> list[Json] | None:
    """The tool calls in a whole answer, or None if it is a plain answer.

    Unforced, an answer that starts with a call is calls if every block is a whole call of
    an offered function (text after the last one is dropped, as when streamed). ``forced``:
    the grammar made the answer calls, so its whole blocks are calls whatever follows; the
    only thing that can follow is the last call cut short by ``max_tokens``, kept with the
    arguments it got (as OpenAI and the streamed answer do)."""
    values, rest = _blocks(text)
    calls = [
        _call(value["name"], json.dumps(value.get("arguments", {}), ensure_ascii=False))
        for value in values
        if _is_call(value, names)
    ]
    if forced:
        opening = _opening(rest[len(OPEN) :]) if rest.startswith(OPEN) else None
        if opening is not None and opening[0] in names:
            name, arguments = opening
            try:  # whole arguments, cut before the closing tag
                arguments = json.dumps(json.JSONDecoder().raw_decode(arguments)[0], ensure_ascii=False)
            except json.JSONDecodeError:
                pass
            calls.append(_call(name, arguments))
        return calls or None
    if rest.startswith(OPEN) or len(calls) != len(values):
        return None
    return calls or None


_NAME_KEY = re.compile(r'\s*\{\s*"name"\s*:\s*')
_ARGUMENTS_KEY = re.compile(r'\s*,\s*"arguments"\s*:\s*')


def _opening(text: str) -> tuple[str, str] | None:
    """``{"name": "...", "arguments":`` at the start of ``text``: the name and what follows
    (None until all of it has come)."""
    key = _NAME_KEY.match(text)
    if key is None:
        return None
    try:
        name, end = json.JSONDecoder().raw_decode(text, key.end())
    except json.JSONDecodeError:
        return None
    arguments = _ARGUMENTS_KEY.match(text, end)
    if arguments is None:
        return None
    return str(name), text[arguments.end() :]


@dataclass
class _Call:
    index: int
    name: str = ""
    depth: int = 0
    in_string: bool = False
    escaped: bool = False
    done: bool = False


@dataclass
class ToolCallStream:
    """Turns streamed text into content deltas or tool-call deltas.

    Text is held back only while it could still be the start of ``<tool_call>``; once the
    answer is known to be a tool call, the name is sent as soon as it is complete and the
    arguments fragment by fragment, as OpenAI does.
    """

    names: set[str]
    mode: str = "undecided"  # -> "content" | "tools"
    pending: str = ""
    calls: list[_Call] = field(default_factory=list)

    def feed(self, text: str) -> list[Json]:
        """Deltas (``{"content": ...}`` or ``{"tool_calls": [...]}``) for this piece of text."""
        self.pending += text
        if self.mode == "undecided":
            head = self.pending.lstrip()
            if OPEN.startswith(head):
                return []  # could still become a tool call
            self.mode = "tools" if head.startswith(OPEN) else "content"
            if self.mode == "tools":
                self.pending = head
        if self.mode == "content":
            out, self.pending = self.pending, ""
            return [{"content": out}] if out else []
        return self._tool_deltas()

    def finish(self) -> list[Json]:
        """Whatever was held back when the stream ends."""
        if self.mode == "undecided" and self.pending:
            self.mode = "content"
            out, self.pending = self.pending, ""
            return [{"content": out}]
        return []

    @property
    def called(self) -> bool:
        return self.mode == "tools" and any(call.done for call in self.calls)

    def _tool_deltas(self) -> list[Json]:
        deltas: list[Json] = []
        while self.pending:
            current = self.calls[-1] if self.calls and not self.calls[-1].done else None
            if current is None:
                # Between calls: skip the wrapper's "}" and "</tool_call>", then wait for
                # `<tool_call>{"name": "...", "arguments":`.
                head = self.pending.lstrip()
                while head.startswith(("}", CLOSE)):
                    head = head[1:] if head.startswith("}") else head[len(CLOSE) :]
                    head = head.lstrip()
                self.pending = head
                if not head.startswith(OPEN):
                    return deltas
                opening = _opening(head[len(OPEN) :])
                if opening is None:
                    return deltas
                name, rest = opening
                if name not in self.names and not self.calls:
                    # Not a call of ours after all: it was text.
                    self.mode, self.pending = "content", ""
                    return [*deltas, {"content": head}]
                call = _Call(index=len(self.calls), name=name)
                self.calls.append(call)
                deltas.append(self._delta(call, name=name, arguments=""))
                self.pending = rest
                continue
            fragment = self._take_arguments(current)
            if fragment:
                deltas.append(self._delta(current, arguments=fragment))
            if not current.done:
                return deltas
        return deltas

    def _take_arguments(self, call: _Call) -> str:
        taken = []
        for index, char in enumerate(self.pending):
            taken.append(char)
            if call.in_string:
                if call.escaped:
                    call.escaped = False
                elif char == "\\":
                    call.escaped = True
                elif char == '"':
                    call.in_string = False
                continue
            if char == '"':
                call.in_string = True
            elif char in "{[":
                call.depth += 1
            elif char in "}]":
                call.depth -= 1
                if call.depth == 0:
                    call.done = True
                    self.pending = self.pending[index + 1 :]
                    return "".join(taken)
        self.pending = ""
        return "".join(taken)

    @staticmethod
    def _delta(call: _Call, *, name: str | None = None, arguments: str) -> Json:
        entry: Json = {"index": call.index, "function": {"arguments": arguments}}
        if name is not None:
            entry.update(id="call_" + uuid.uuid4().hex[:24], type="function")
            entry["function"] = {"name": name, "arguments": arguments}
        return {"tool_calls": [entry]}
