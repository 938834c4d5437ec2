"""The Responses tools a local model can call that are not plain functions, and the
hosted tools it cannot: what coding agents (Codex CLI first) send on every turn.

A chat model calls functions only, so each tool here is offered as a function under a
name the model can call, and its calls are answered as the document's own item types:

- a ``namespace`` tool's functions (and custom tools) as ``<namespace>__<name>``; a call
  is a ``function_call`` (``custom_tool_call``) item with ``namespace`` and the inner name;
- a ``custom`` tool as a function of one string, ``input``; a call is a ``custom_tool_call``
  with that text. A ``regex`` grammar becomes the string's ``pattern``, which the engine
  compiles into its grammar when the call is forced (the JSON string's escapes are written
  by the grammar, so the decoded input matches the regex). A ``lark`` grammar is not
  compiled (no sound Lark-to-GBNF conversion here): offered as free text with the grammar
  in the description, and a request that forces such a tool is refused naming its format;
- the client-executed ``local_shell``, ``shell`` and ``apply_patch`` tools as functions with
  the arguments of the document's actions; a call is a ``local_shell_call``,
  ``shell_call`` or ``apply_patch_call`` for the client to run.

Their items in a request's input (calls and outputs) are replayed as the function calls
and outputs the model made and read. Hosted tools that need OpenAI's cloud (web search,
image generation, the code interpreter, computer use) are left out of what the model is
offered when ``tool_choice`` lets it choose; a ``tool_choice`` that forces one is always a
400 (``cloud_tools.py``: which they are, the header naming those dropped, the policy).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ...errors import bad_request
from ...json.types import Json
from . import cloud_tools
from .items import new_id
from .tool_regex import Unkept, portable


CLIENT_TOOLS = ("namespace", "custom", "local_shell", "shell", "apply_patch")
# Input items of these tools, replayed here for the model.
CALL_ITEMS = ("custom_tool_call", "local_shell_call", "shell_call", "apply_patch_call")
OUTPUT_ITEMS = ("custom_tool_call_output", "local_shell_call_output", "shell_call_output", "apply_patch_call_output")

_FUNCTION_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_STRINGS = {"type": "array", "items": {"type": "string"}}
_CUT_INPUT = re.compile(r'\s*\{\s*"input"\s*:\s*"((?:[^"\\]|\\.)*\\?)$', re.DOTALL)
_PARAMETERS = {
    "local_shell": {
        "type": "object",
        "properties": {
            "command": {**_STRINGS, "description": "The command and its arguments (argv)."},
            "working_directory": {"type": "string"},
            "timeout_ms": {"type": "integer"},
        },
        "required": ["command"],
    },
    "shell": {
        "type": "object",
        "properties": {
            "commands": {**_STRINGS, "description": "Shell commands, run one after the other."},
            "timeout_ms": {"type": "integer"},
        },
        "required": ["commands"],
    },
    "apply_patch": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["create_file", "update_file", "delete_file"]},
            "path": {"type": "string"},
            "diff": {"type": "string", "description": "The file's content (create) or a V4A diff (update)."},
        },
        "required": ["type", "path"],
    },
}
_DESCRIPTIONS = {
    "local_shell": "Run a command on the user's machine; the user's client runs it and answers with its output.",
    "shell": "Run shell commands on the user's machine; the user's client runs them and answers with their output.",
    "apply_patch": "Create, update or delete a file on the user's machine; the user's client applies it.",
}


def _name(raw: str, taken: set[str]) -> str:
    """A function name the model can call for ``raw`` (chat's ``[A-Za-z0-9_-]{1,64}``), new in ``taken``."""
    name = _UNSAFE.sub("_", raw)[:_FUNCTION_NAME]
    if name in taken:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name, serial = f"{name[: _FUNCTION_NAME - 9]}_{digest}", 2
        while name in taken:
            name, serial = f"{name[: _FUNCTION_NAME - 9 - len(str(serial))]}_{digest}{serial}", serial + 1
    taken.add(name)
    return name


def _custom_parameters(tool: Json, param: str) -> tuple[Json, str, str | None]:
    """A custom tool's one string argument, what the description adds, and why its grammar
    is not kept (None: it is, or it has none)."""
    fmt = tool.get("format") or {"type": "text"}
    text: Json = {"type": "string"}
    unkept = None
    if fmt.get("type") == "grammar" and fmt.get("syntax") == "regex":
        try:
            text["pattern"] = portable(fmt.get("definition") or "")
            return {"type": "object", "properties": {"input": text}, "required": ["input"], "additionalProperties": False}, "", None
        except re.error as error:
            raise bad_request(
                f"Invalid value for '{param}.format.definition': not a regex ({error}).", f"{param}.format.definition", "invalid_value"
            ) from None
        except Unkept as why:
            unkept = f"its regex uses syntax local models cannot keep ({why})"
    elif fmt.get("type") == "grammar":
        unkept = "local models cannot keep a Lark grammar (only regex grammars and free text are compiled)"
    extra = ""
    if fmt.get("type") == "grammar":
        extra = f"\nThe input follows this {fmt.get('syntax')} grammar:\n{fmt.get('definition') or ''}"
    return {"type": "object", "properties": {"input": text}, "required": ["input"]}, extra, unkept


class ClientTools:
    """The function names the model sees for one request's tools, each meaning one tool."""

    def __init__(self, body: Json) -> None:
        tools = body.get("tools") or []
        taken = {tool["name"] for tool in tools if tool.get("type") == "function" and isinstance(tool.get("name"), str)}
        # function name -> (kind, namespace or None, the tool as the client declared it)
        self.tools: dict[str, tuple[str, str | None, Json]] = {}
        self.names: dict[tuple[str, str | None, str], str] = {}
        self.functions: list[Json] = []
        # function name -> why its grammar is not kept (a custom tool offered as free text)
        self.unkept: dict[str, str] = {}
        for index, tool in enumerate(tools):
            kind = tool.get("type")
            if kind == "namespace":
                for position, inner in enumerate(tool.get("tools") or []):
                    raw = f"{tool['name']}__{inner['name']}"
                    self._offer(inner.get("type"), tool["name"], inner, raw, taken, f"tools[{index}].tools[{position}]")
            elif kind == "custom":
                self._offer("custom", None, tool, tool["name"], taken, f"tools[{index}]")
            elif kind in _PARAMETERS:
                self._offer(kind, None, tool, kind, taken, f"tools[{index}]")

    def _offer(self, kind: str, namespace: str | None, tool: Json, raw: str, taken: set[str], param: str) -> None:
        name = _name(raw, taken)
        self.tools[name] = (kind, namespace, tool)
        self.names[(kind, namespace, tool.get("name") or kind)] = name
        if kind == "function":
            function = {key: tool[key] for key in ("description", "parameters", "strict") if tool.get(key) is not None}
            described = f"{namespace}: " if namespace else ""
            self.functions.append({**function, "type": "function", "name": name, "description": described + (tool.get("description") or tool["name"])})
        elif kind == "custom":
            parameters, extra, unkept = _custom_parameters(tool, param)
            if unkept:
                self.unkept[name] = unkept
            description = (tool.get("description") or f"The '{tool['name']}' tool: free text input.") + extra
            strict = "pattern" in parameters["properties"]["input"]
            self.functions.append({"type": "function", "name": name, "description": description, "parameters": parameters, "strict": strict})
        else:
            self.functions.append({"type": "function", "name": name, "description": _DESCRIPTIONS[kind], "parameters": _PARAMETERS[kind], "strict": False})

    def __bool__(self) -> bool:
        return bool(self.tools)

    def function(self, kind: str, namespace: str | None, name: str) -> str:
        """The function name of a tool (for the history, one no longer offered too)."""
        found = self.names.get((kind, namespace, name))
        if found is None and kind == "custom" and namespace is None:
            found = self.names.get(("function", None, name))
        return found or _UNSAFE.sub("_", f"{namespace}__{name}" if namespace else name)[:_FUNCTION_NAME]

    # --- the request -----------------------------------------------------------------------

    def chat_body(self, body: Json) -> Json:
        """``body`` as the chat translation sees it: these tools as functions, the hosted
        tools left out, a ``tool_choice`` naming one of them as the function it forces."""
        tools = body.get("tools") or []
        if not self and not cloud_tools.dropped(body):
            return body
        offered = [tool for tool in tools if tool.get("type") not in (*CLIENT_TOOLS, *cloud_tools.CLOUD_TOOLS)] + self.functions
        return {**body, "tools": offered, "tool_choice": self._choice(body.get("tool_choice"), tools)}

    def _forced(self, kind: str, namespace: str | None, name: str, param: str) -> Json:
        function = self.names.get((kind, namespace, name))
        if function is None:
            raise bad_request(f"Tool choice '{kind}' names '{name}', which is not in 'tools'.", param, "invalid_value")
        if function in self.unkept:
            raise bad_request(
                f"Tool choice forces the custom tool '{name}', but {self.unkept[function]}; let the model choose it, "
                "or give a grammar local models can keep.",
                param,
                "unsupported_parameter",
            )
        return {"type": "function", "name": function}

    def _choice(self, choice: Any, tools: list[Json]) -> Any:
        if not isinstance(choice, dict):
            return choice
        kind = choice.get("type")
        if kind in cloud_tools.CLOUD_TOOLS:
            raise cloud_tools.forced(kind, "tool_choice")
        if kind == "custom":
            return self._forced("custom", None, str(choice.get("name")), "tool_choice.name")
        if kind in ("shell", "apply_patch"):
            return self._forced(kind, None, kind, "tool_choice")
        if kind == "function":
            return self._function(choice, tools)
        if kind == "allowed_tools":
            allowed = []
            for tool in choice.get("tools") or []:
                if tool.get("type") in ("custom", "shell", "apply_patch", "local_shell"):
                    allowed.append(self._forced(tool["type"], None, tool.get("name") or tool["type"], "tool_choice.tools"))
                elif tool.get("type") == "function":
                    allowed.append(self._function(tool, tools))
                elif tool.get("type") not in cloud_tools.CLOUD_TOOLS:  # hosted ones are not offered: not allowed either
                    allowed.append(tool)
            if not allowed and choice.get("mode") == "required":
                kinds = [tool.get("type") for tool in choice.get("tools") or []]
                raise cloud_tools.forced(kinds[0] if kinds else "allowed_tools", "tool_choice.tools")
            return {**choice, "tools": allowed}
        return choice

    def _function(self, choice: Json, tools: list[Json]) -> Json:
        """A function named in ``tool_choice``: a namespace's function by its own name (when
        one namespace has it and no plain function does), or as offered."""
        if any(t.get("type") == "function" and t.get("name") == choice.get("name") for t in tools) or choice.get("name") in self.tools:
            return choice
        inner = [name for (k, ns, n), name in self.names.items() if k == "function" and ns and n == choice.get("name")]
        return {**choice, "name": inner[0]} if len(inner) == 1 else choice

    # --- the answer ------------------------------------------------------------------------

    def open_item(self, name: str, call_id: str) -> Json | None:
        """The item a call of function ``name`` starts (None: a plain function's)."""
        found = self.tools.get(name)
        if found is None:
            return None
        kind, namespace, tool = found
        if kind == "function":
            return {"id": new_id("fc"), "type": "function_call", "status": "in_progress", "call_id": call_id,
                    "namespace": namespace, "name": tool["name"], "arguments": ""}
        if kind == "custom":
            item = {"id": new_id("ctc"), "type": "custom_tool_call", "call_id": call_id, "name": tool["name"], "input": ""}
            return {**item, "namespace": namespace} if namespace else item
        if kind == "local_shell":
            action: Json = {"type": "exec", "command": [], "env": {}, "timeout_ms": None, "working_directory": None, "user": None}
            return {"id": new_id("lsh"), "type": "local_shell_call", "call_id": call_id, "action": action, "status": "in_progress"}
        if kind == "shell":
            action = {"commands": [], "timeout_ms": None, "max_output_length": None}
            return {"id": new_id("sh"), "type": "shell_call", "call_id": call_id, "action": action, "status": "in_progress", "environment": None}
        return {"id": new_id("apc"), "type": "apply_patch_call", "call_id": call_id, "status": "in_progress", "operation": {}}

    @staticmethod
    def finish(item: Json, arguments: str, status: str) -> None:
        """Fill ``item`` (from ``open_item``) in from the call's whole ``arguments``."""
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = _cut_input(arguments)  # cut off by the token limit: the item is incomplete
        parsed = parsed if isinstance(parsed, dict) else {}
        kind = item["type"]
        if kind == "function_call":
            item.update(arguments=arguments, status=status)
        elif kind == "custom_tool_call":
            item["input"] = parsed.get("input") if isinstance(parsed.get("input"), str) else ""
        elif kind == "local_shell_call":
            command = parsed.get("command")
            item["action"].update(
                command=[str(part) for part in command] if isinstance(command, list) else ([command] if isinstance(command, str) else []),
                timeout_ms=parsed.get("timeout_ms") if isinstance(parsed.get("timeout_ms"), int) else None,
                working_directory=parsed.get("working_directory") if isinstance(parsed.get("working_directory"), str) else None,
            )
            item["status"] = status
        elif kind == "shell_call":
            commands = parsed.get("commands")
            item["action"].update(
                commands=[str(part) for part in commands] if isinstance(commands, list) else ([commands] if isinstance(commands, str) else []),
                timeout_ms=parsed.get("timeout_ms") if isinstance(parsed.get("timeout_ms"), int) else None,
            )
            item["status"] = status
        elif kind == "apply_patch_call":
            operation = {"type": parsed.get("type") if parsed.get("type") in ("create_file", "update_file", "delete_file") else "update_file",
                         "path": str(parsed.get("path") or "")}
            if operation["type"] != "delete_file":
                operation["diff"] = str(parsed.get("diff") or "")
            item.update(operation=operation, status="completed" if status == "completed" else "in_progress")
        if kind == "function_call" and item.get("namespace") is None:
            item.pop("namespace", None)

    def answered(self, response: Json) -> Json:
        """A whole response's ``function_call`` items of these tools as their own items."""
        output = []
        for item in response.get("output") or []:
            mapped = self.open_item(item["name"], item["call_id"]) if item.get("type") == "function_call" else None
            if mapped is None:
                output.append(item)
                continue
            mapped["id"] = item["id"] if mapped["type"] == "function_call" else mapped["id"]
            self.finish(mapped, item.get("arguments") or "", item.get("status") or "completed")
            output.append(mapped)
        return {**response, "output": output}

    # --- the input -------------------------------------------------------------------------

    def replayable(self, items: list[Json]) -> list[Json]:
        """Items for the chat translation: these tools' calls and outputs as the function
        calls and outputs the model made and read."""
        replayed = []
        for item in items:
            kind = item.get("type")
            if kind == "function_call" and item.get("namespace"):
                name = self.function("function", item["namespace"], item["name"])
                replayed.append({**item, "name": name})
            elif kind in CALL_ITEMS:
                replayed.append(self._call(item))
            elif kind in OUTPUT_ITEMS:
                call_id = item.get("call_id") or item.get("id")
                replayed.append({"type": "function_call_output", "call_id": call_id, "output": _output_text(item)})
            else:
                replayed.append(item)
        return replayed

    def _call(self, item: Json) -> Json:
        kind = item["type"]
        if kind == "custom_tool_call":
            name, arguments = self.function("custom", item.get("namespace"), item.get("name") or ""), {"input": item.get("input") or ""}
        elif kind == "local_shell_call":
            action = item.get("action") or {}
            arguments = {key: action[key] for key in ("command", "working_directory", "timeout_ms") if action.get(key) is not None}
            name = self.function("local_shell", None, "local_shell")
        elif kind == "shell_call":
            action = item.get("action") or {}
            arguments = {key: action[key] for key in ("commands", "timeout_ms") if action.get(key) is not None}
            name = self.function("shell", None, "shell")
        else:
            arguments, name = item.get("operation") or {}, self.function("apply_patch", None, "apply_patch")
        return {"type": "function_call", "call_id": item["call_id"], "name": name, "arguments": json.dumps(arguments)}


def _cut_input(arguments: str) -> Json:
    """What a custom tool's call cut by the token limit had written of its input."""
    found = _CUT_INPUT.match(arguments)
    if found is None:
        return {}
    text = found.group(1)
    for end in range(len(text), max(len(text) - 6, -1), -1):  # a cut escape sequence left out
        try:
            return {"input": json.loads(f'"{text[:end]}"')}
        except ValueError:
            continue
    return {}


def _output_text(item: Json) -> Any:
    """What the model reads of a client tool's output."""
    output = item.get("output")
    if item["type"] == "shell_call_output" and isinstance(output, list):
        parts = []
        for part in output:
            outcome = part.get("outcome") or {}
            ended = f"exit code {outcome.get('exit_code')}" if outcome.get("type") == "exit" else "timed out"
            parts.append("".join(filter(None, [part.get("stdout"), part.get("stderr")])) + f"\n({ended})")
        return "\n".join(parts)
    if item["type"] == "apply_patch_call_output" and not output:
        return f"The patch was {'applied' if item.get('status') == 'completed' else 'not applied'}."
    return output if output is not None else ""
