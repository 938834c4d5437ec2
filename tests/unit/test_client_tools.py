"""serving/responses/client_tools.py: the names the model sees for agents' tools, the
items its calls become, what is replayed of them, hosted tools dropped or refused."""

from __future__ import annotations

import json
import re

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.serving.responses.client_tools import ClientTools
from llm_backend.serving.responses.cloud_tools import check_hosted, dropped
from llm_backend.serving.responses.tool_regex import Unkept, portable

SPAWN = {"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {}}}
NAMESPACE = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": [SPAWN]}
REGEX = {"type": "custom", "name": "ticket", "format": {"type": "grammar", "syntax": "regex", "definition": "^[A-Z]{3}-\\d+$"}}
LARK = {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}


def offered(body: dict) -> dict:
    return {tool["name"]: tool for tool in ClientTools(body).chat_body(body)["tools"]}


def test_each_tool_is_offered_as_a_function_and_hosted_ones_are_left_out():
    body = {"tools": [SPAWN, NAMESPACE, REGEX, LARK, {"type": "local_shell"}, {"type": "shell"}, {"type": "web_search"}]}
    names = offered(body)
    assert set(names) == {"spawn_agent", "multi_agent_v1__spawn_agent", "ticket", "apply_patch", "local_shell", "shell"}
    assert names["ticket"]["parameters"]["properties"]["input"]["pattern"] == "^([A-Z]{3}-[0-9]+)$" and names["ticket"]["strict"]
    assert "pattern" not in names["apply_patch"]["parameters"]["properties"]["input"]
    assert "start: /.+/" in names["apply_patch"]["description"]  # offered as free text, the grammar told
    assert dropped(body) == ["web_search"]


def test_a_name_taken_by_a_function_is_not_reused():
    body = {"tools": [{"type": "function", "name": "shell"}, {"type": "shell"}]}
    tools = ClientTools(body)
    [name] = [name for name, (kind, _, _) in tools.tools.items() if kind == "shell"]
    assert name != "shell" and name.startswith("shell_")
    item = tools.open_item(name, "call_1")
    tools.finish(item, json.dumps({"commands": ["ls"]}), "completed")
    assert item["type"] == "shell_call" and item["action"]["commands"] == ["ls"]
    assert tools.open_item("shell", "call_2") is None  # the client's own function stays one


def test_tool_choices_become_the_functions_they_force():
    tools = ClientTools({"tools": [NAMESPACE, REGEX, {"type": "apply_patch"}]})
    body = {"tools": [NAMESPACE, REGEX, {"type": "apply_patch"}, {"type": "web_search"}]}
    choose = lambda choice: tools.chat_body({**body, "tool_choice": choice})["tool_choice"]  # noqa: E731
    assert choose({"type": "custom", "name": "ticket"}) == {"type": "function", "name": "ticket"}
    assert choose({"type": "apply_patch"}) == {"type": "function", "name": "apply_patch"}
    assert choose({"type": "function", "name": "spawn_agent"})["name"] == "multi_agent_v1__spawn_agent"
    allowed = choose({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "web_search"}, {"type": "custom", "name": "ticket"}]})
    assert allowed["tools"] == [{"type": "function", "name": "ticket"}]


@pytest.mark.parametrize(
    "choice, param",
    [
        ({"type": "web_search_preview"}, "tool_choice"),
        ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "web_search"}]}, "tool_choice.tools"),
        ({"type": "custom", "name": "apply_patch"}, "tool_choice.name"),  # a Lark grammar cannot be kept
        ({"type": "custom", "name": "missing"}, "tool_choice.name"),
    ],
)
def test_a_choice_that_cannot_be_kept_is_refused_naming_it(choice, param):
    body = {"tools": [LARK, {"type": "web_search"}], "tool_choice": choice}
    with pytest.raises(OpenAIError) as refused:
        ClientTools(body).chat_body(body)
    assert refused.value.param == param


def test_the_refuse_setting_names_the_hosted_tool():
    with pytest.raises(OpenAIError) as refused:
        check_hosted({"tools": [SPAWN, {"type": "image_generation"}]}, "refuse")
    assert refused.value.param == "tools[1].type"
    check_hosted({"tools": [{"type": "image_generation"}]}, "drop")


def test_calls_and_outputs_in_input_are_replayed_as_function_calls():
    tools = ClientTools({"tools": [NAMESPACE, REGEX, {"type": "local_shell"}, {"type": "apply_patch"}]})
    operation = {"type": "create_file", "path": "a.txt", "diff": "hi"}
    replayed = tools.replayable([
        {"type": "function_call", "namespace": "multi_agent_v1", "name": "spawn_agent", "call_id": "c1", "arguments": "{}"},
        {"type": "custom_tool_call", "name": "ticket", "call_id": "c2", "input": "ABC-1"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "filed"},
        {"type": "local_shell_call", "call_id": "c3", "action": {"type": "exec", "command": ["ls"], "env": {}}},
        {"type": "local_shell_call_output", "id": "c3", "output": "a.py"},
        {"type": "apply_patch_call", "call_id": "c4", "status": "completed", "operation": operation},
        {"type": "apply_patch_call_output", "call_id": "c4", "status": "failed"},
        {"type": "shell_call_output", "call_id": "c5", "output": [{"stdout": "x", "stderr": "", "outcome": {"type": "exit", "exit_code": 2}}]},
    ])
    calls = [(item["name"], json.loads(item["arguments"])) for item in replayed if item["type"] == "function_call"]
    assert calls == [
        ("multi_agent_v1__spawn_agent", {}),
        ("ticket", {"input": "ABC-1"}),
        ("local_shell", {"command": ["ls"]}),
        ("apply_patch", operation),
    ]
    outputs = [(item["call_id"], item["output"]) for item in replayed if item["type"] == "function_call_output"]
    assert outputs == [("c2", "filed"), ("c3", "a.py"), ("c4", "The patch was not applied."), ("c5", "x\n(exit code 2)")]


def test_a_call_cut_by_the_token_limit_is_an_incomplete_item():
    tools = ClientTools({"tools": [{"type": "local_shell"}, {"type": "custom", "name": "note"}]})
    shell = tools.open_item("local_shell", "c1")
    tools.finish(shell, '{"command": ["l', "incomplete")
    assert shell["status"] == "incomplete" and shell["action"]["command"] == []
    note = tools.open_item("note", "c2")
    tools.finish(note, '{"input": "ab\\u00', "incomplete")
    assert note["input"] == "ab"  # what was written, a cut escape left out


SAMPLES = ["", "a", "ab1", "v1.2", "v12.3-rc", "x y", "A-12", "a.b", "a]b", 'say "hi"', "tab\there", "1+1", "(x)"]


@pytest.mark.parametrize(
    "regex",
    [r"^[A-Z]{3}-\d+$", r"v(?:\d+)\.\d+[\-a-z]*", r"\w+\s\w+", r"[^\d]+", r"\D*", r"a\.b|a\]b", r'say \"hi\"',
     r"[]a]b", r"a{2}b{1,}c{0,2}", r"\d\+\d", r"\(x\)", r"tab\there", r"a*?b??"],
)
def test_a_portable_regex_matches_what_the_original_matches(regex):
    rewritten = portable(regex)
    assert rewritten.startswith("^(") and rewritten.endswith(")$") and "\\d" not in rewritten
    for sample in SAMPLES:
        assert bool(re.fullmatch(rewritten, sample)) == bool(re.fullmatch(regex.lstrip("^").rstrip("$"), sample)), sample


@pytest.mark.parametrize("regex", [r"(?=a)b", r"\bword\b", r"(a)\1", r"a^b", r"[\D]", r"[[:alpha:]]", r'["]', r"\p{L}", r"a\\b", r"a{2,"])
def test_syntax_the_grammar_cannot_keep_is_said(regex):
    with pytest.raises(Unkept):
        portable(regex)


def test_an_unkept_regex_is_free_text_unless_forced_and_no_regex_is_a_400():
    body = {"tools": [{"type": "custom", "name": "w", "format": {"type": "grammar", "syntax": "regex", "definition": r"\bw"}}]}
    assert "pattern" not in offered(body)["w"]["parameters"]["properties"]["input"]
    with pytest.raises(OpenAIError) as refused:
        ClientTools(body).chat_body({**body, "tool_choice": {"type": "custom", "name": "w"}})
    assert refused.value.param == "tool_choice.name" and "\\b" in refused.value.message
    bad = {"tools": [{"type": "custom", "name": "w", "format": {"type": "grammar", "syntax": "regex", "definition": "[a"}}]}
    with pytest.raises(OpenAIError) as refused:
        ClientTools(bad)
    assert refused.value.param == "tools[0].format.definition"
