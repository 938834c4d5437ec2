"""Tool calling for models whose chat template knows no tools (or that are told to use this):
the tools described in a system message, and the call written as the Hermes convention's
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (which small instruction models
follow best), parsed and forced as Hermes's (hermes.py). History calls and tool results
become plain text turns any chat template accepts."""

from __future__ import annotations

import json
from typing import Any

from ....json.types import Json
from .base import with_object_arguments
from .hermes import CLOSE, OPEN, Hermes


class Convention(Hermes):
    name = "convention"
    # Nothing around the JSON, as its instructions show it: a small model forced to call would
    # otherwise spend tokens on a newline it was offered (a max_tokens budget shared with the
    # answer that follows, in an agent's loop, runs out).
    around_call = ""

    @classmethod
    def detect(cls, template: str) -> bool:
        return False  # chosen when no family is recognised

    def prompt(self, messages: list[Json], tools: list[Json] | None, choice: Any) -> tuple[list[Json], list[Json] | None]:
        messages = plain_history(messages)
        if tools:
            messages = with_system_text(messages, tool_instructions(tools, choice))
        return messages, None  # the template is not given the tools: it would drop them


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


def with_system_text(messages: list[Json], text: str) -> list[Json]:
    # One system message first: some chat templates accept no other place for it.
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + "\n\n" + text}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def plain_history(messages: list[Json]) -> list[Json]:
    """Assistant tool calls and tool results as plain text turns any chat template accepts."""
    rendered = []
    for message in messages:
        if message.get("tool_calls"):
            calls = "".join(
                OPEN
                + json.dumps({"name": call["function"]["name"], "arguments": call["function"]["arguments"]}, ensure_ascii=False)
                + CLOSE
                for call in map(with_object_arguments, message["tool_calls"])
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
