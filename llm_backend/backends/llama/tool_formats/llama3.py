"""Llama 3.1, 3.2, 3.3: a custom tool's call is the whole answer, a JSON object
``{"name": ..., "parameters": {...}}`` (3.2 may add ``"type": "function"``; several are
separated by ``;``); after ``<|python_tag|>`` comes a JSON call too, or a built-in tool's
``brave_search.call(query="...")``, or code (for a tool named ``python`` or
``code_interpreter``). Its templates print one call per assistant message (they raise on
more), so a history message with several is split into several."""

from __future__ import annotations

import ast
import json
import re

from ....json.types import Json
from .base import Arguments, Call, Content, Event, Parser, StepParser, ToolFormat, one_call_per_message
from .json_calls import JsonCalls

PYTHON_TAG = "<|python_tag|>"
_BUILTIN_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\.call\((.*)\)\s*$", re.DOTALL)
CODE_TOOLS = ("python", "code_interpreter")


class Llama3(ToolFormat):
    name = "llama3"
    markers = (PYTHON_TAG,)

    @classmethod
    def detect(cls, template: str) -> bool:
        return "<|start_header_id|>" in template and ("ipython" in template or PYTHON_TAG in template)

    def history(self, messages: list[Json]) -> list[Json]:
        return super().history(one_call_per_message(messages))

    def grammar(self, tools: list[Json], parallel: bool) -> str:
        from ..schema_grammar import call_rules

        return "root ::= call\n" + call_rules(tools, "parameters")  # one call at a time, as its template says

    def parser(self, names: set[str]) -> Parser:
        return Llama3Answer(names)


class Llama3Answer(StepParser):
    """Calls if the answer starts with one, else text, all of it."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(names, "start")  # -> content | call -> between -> ... | tagged -> code
        self.before = ""  # what preceded the call object: given back with it if it is none

    def finish(self) -> list[Event]:
        if self.state in ("start", "content"):
            return [Content(self.buffer)]
        if self.state == "call" and not self.calls:
            return [Content(self.before + self.call.give_up())]
        if self.state == "code":
            return self._code()
        return []

    def _step(self, events: list[Event]) -> bool:
        head = self.buffer.lstrip(" \t\r\n;" if self.state == "between" else " \t\r\n")
        if self.state in ("start", "between", "tagged") and head.startswith("{"):
            self.before = (self.before if self.state == "tagged" else "") + self.buffer[: len(self.buffer) - len(head)]
            self.buffer, self.state, self.call = head, "call", JsonCalls(self.names, ("parameters", "arguments"))
        elif self.state in ("start", "between"):
            if head.startswith(PYTHON_TAG):
                self.buffer, self.before, self.state = head[len(PYTHON_TAG) :], PYTHON_TAG, "tagged"
            elif not head or PYTHON_TAG.startswith(head):
                return False
            else:
                self.state = "content" if self.state == "start" else "after"
        elif self.state == "tagged":
            if head:
                self.state = "code"  # a built-in call or code: read whole at the end
            return False
        elif self.state == "call":
            return self._call_step(events, self.before, "between")
        elif self.state == "content":
            events.append(Content(self.buffer))
            self.buffer = ""
            return False
        else:  # code: wait for the end
            return False
        return True

    def _code(self) -> list[Event]:
        """After the python tag: ``tool.call(name="value", ...)`` of an offered built-in
        tool, or code for a code tool offered as ``python`` or ``code_interpreter``."""
        text = self.buffer
        builtin = _BUILTIN_CALL.match(text)
        if builtin and builtin.group(1) in self.names:
            try:
                call = ast.parse(f"f({builtin.group(2)})", mode="eval").body
                # More than a call's arguments (``x.call(a=1) + (1)``) parses as something else.
                if isinstance(call, ast.Call) and not call.args:
                    arguments = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
                else:
                    arguments = None
            except (SyntaxError, ValueError):
                arguments = None
            if arguments is not None:
                return [Call(builtin.group(1)), Arguments(json.dumps(arguments, ensure_ascii=False))]
        code_tool = next((name for name in CODE_TOOLS if name in self.names), None)
        if code_tool and text.strip():
            return [Call(code_tool), Arguments(json.dumps({"code": text.strip()}, ensure_ascii=False))]
        return [] if self.calls else [Content(PYTHON_TAG + text)]
