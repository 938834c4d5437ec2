"""What coding agents send to the Responses API (issue #49, item 1), through the official
SDK: Codex's first request (``client_metadata``, a ``namespace`` tool, ``web_search``,
function tools, ``tool_choice: auto``) over HTTP and the WebSocket; a namespace's function, a
custom tool with a regex grammar and the client-executed ``local_shell``, ``shell`` and
``apply_patch`` tools, each call forced (the small model cannot judge when to call), answered
as the document's item types and sent back.

What is tested is the request's translation and the call's item, not what a model says: a
call whose strings the grammar bounds (a namespace's ``maxLength``, a custom tool's regex) and
the requests that force none run on ``synthetic://test-tiny`` (``tiny``), whose noise the
grammar holds to the same shape. The ``shell``, ``apply_patch`` and free-text custom tools
take strings no schema of theirs bounds: noise never closes one, so each call would be cut at
``max_output_tokens`` (an ``apply_patch_call`` cut so has no path, and the document refuses it
sent back); they stay on the real model (the session's ``client``), whose calls end (31 to 47
tokens). ``local_shell`` is cut on both (SmolLM2 repeats argv entries to the limit on these
prompts: an empty command either way), so it runs on ``tiny``. Every call is sent back to
``tiny``: its replay is the server's translation, whichever model made it. Moved so, this file
took 15-16 CPU-s run alone against 32 (servers' starts included)."""

from __future__ import annotations

import json
import re

import openai
import pytest

from tests.conftest import MODEL as DEFAULT
from llm_backend.spec.validation import RequestSchemaValidator
from tests.support.clients import sdk
from tests.support.document import openai_document
from tests.support.models import TINY, TINY_CONFIG
from tests.support.response_events import validate_event
from tests.support.server import LiveServer

MODEL = TINY

ITEM_RESOURCE = RequestSchemaValidator({"$ref": "#/components/schemas/ItemResource", "components": openai_document()["components"]})
EXEC = {
    "type": "function",
    "name": "exec_command",
    "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"], "additionalProperties": False},
    "strict": False,
}
SPAWN = {
    "type": "function",
    "name": "spawn_agent",
    "description": "Start a sub-agent with a task.",
    "parameters": {"type": "object", "properties": {"task": {"type": "string", "maxLength": 40}}, "required": ["task"], "additionalProperties": False},
    "strict": True,
}
NAMESPACE = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": [SPAWN]}
CODEX_FIRST = {
    "model": MODEL,
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are a coding agent."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hi."}]},
    ],
    "tools": [EXEC, NAMESPACE, {"type": "web_search", "external_web_access": False}],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"summary": "auto"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "session-1",
    "max_output_tokens": 16,
}
CLIENT_METADATA = {"x-codex-installation-id": "abc", "traceparent": "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> openai.OpenAI:
    with LiveServer(tmp_path_factory.mktemp("agent-tools"), config=TINY_CONFIG) as live:
        yield sdk(live, api_key="anything")


def codex_body(**extra) -> dict:
    return {**CODEX_FIRST, "client_metadata": CLIENT_METADATA, **extra}


def create(client: openai.OpenAI, body: dict):
    """``body`` as the SDK sends it (its own fields as arguments, the rest as extra body)."""
    known = {key: value for key, value in body.items() if key != "client_metadata"}
    extra = {"client_metadata": body["client_metadata"]} if "client_metadata" in body else None
    return client.responses.with_raw_response.create(**known, extra_body=extra)


def test_codexs_first_request_is_answered_and_says_which_hosted_tools_were_dropped(tiny):
    raw = create(tiny, codex_body())
    response = raw.parse()
    assert response.status in ("completed", "incomplete")
    assert raw.headers["x-llm-backend-dropped-tools"] == "web_search"
    assert "client_metadata" not in response.model_dump()  # not echoed


def test_the_items_metadata_codex_sends_with_openais_own_provider_is_accepted_and_not_kept(tiny):
    # Codex 0.171 with ``openai_base_url`` (its Responses WebSocket) puts this on its history's
    # items; refused before as an unknown parameter (its own run: test_agent_clients.py).
    passthrough = {"content_item_kinds": ["model.base_instructions"], "turn_id": "t1"}
    items = [{**item, "internal_chat_message_metadata_passthrough": passthrough} for item in CODEX_FIRST["input"]]
    response = create(tiny, codex_body(input=items, store=True)).parse()
    assert response.status in ("completed", "incomplete")
    listed = tiny.responses.input_items.list(response.id).model_dump()
    assert len(listed["data"]) == 2 and "internal_chat_message_metadata_passthrough" not in json.dumps(listed)


def test_codexs_first_request_streams(tiny):
    with tiny.responses.stream(**CODEX_FIRST, extra_body={"client_metadata": CLIENT_METADATA}) as stream:
        events = list(stream)
    assert events[-1].type in ("response.completed", "response.incomplete")


def test_codexs_first_request_over_the_websocket(tiny):
    with tiny.responses.connect() as connection:
        # The SDK's create() has no extra fields: the event as Codex sends it.
        connection.send({"type": "response.create", **codex_body()})
        for event in connection:
            if event.type in ("response.completed", "response.incomplete", "response.failed", "error"):
                break
    assert event.type in ("response.completed", "response.incomplete"), event


def test_client_metadata_is_checked_as_a_map_of_strings(tiny):
    with pytest.raises(openai.BadRequestError) as refused:
        create(tiny, codex_body(client_metadata={"n": 1}, input="Say hi."))
    assert refused.value.body["param"] == "client_metadata.n"


def test_a_forced_hosted_tool_is_still_refused(tiny):
    with pytest.raises(openai.BadRequestError) as refused:
        create(tiny, codex_body(tool_choice={"type": "web_search_preview"}, tools=[{"type": "web_search_preview"}]))
    assert refused.value.body["param"] == "tool_choice"
    assert "web search" in refused.value.body["message"]


HOSTED = [{"type": "web_search"}, {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"}]


def test_hosted_tools_are_not_offered_when_the_model_may_choose(tiny):
    raw = tiny.responses.with_raw_response.create(model=MODEL, input="Hi", tools=HOSTED, tool_choice="auto", max_output_tokens=16)
    assert raw.headers["x-llm-backend-dropped-tools"] == "web_search,code_interpreter,image_generation"
    assert raw.parse().status in ("completed", "incomplete")


def test_a_setting_refuses_hosted_tools_instead(start_server):
    live = start_server(env={"LLM_BACKEND_RESPONSES_HOSTED_TOOLS": "refuse"})
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(live).responses.create(model=DEFAULT, input="Hi", tools=[EXEC, *HOSTED], max_output_tokens=16)
    assert refused.value.body["param"] == "tools[1].type" and "web search" in refused.value.body["message"]


def forced(client: openai.OpenAI, tools: list, choice, text: str, model: str = MODEL, **extra):
    return client.responses.create(
        model=model, input=text, tools=tools, tool_choice=choice, max_output_tokens=80, temperature=0, **extra
    )


def test_a_namespaced_function_call_carries_its_namespace_and_round_trips(tiny):
    response = forced(tiny, [EXEC, NAMESPACE], {"type": "function", "name": "spawn_agent"}, "Start an agent that writes tests.")
    [call] = response.output
    assert (call.type, call.namespace, call.name) == ("function_call", "multi_agent_v1", "spawn_agent")
    assert isinstance(json.loads(call.arguments)["task"], str)
    answer = tiny.responses.create(
        model=MODEL,
        input=[call.model_dump(exclude_none=True), {"type": "function_call_output", "call_id": call.call_id, "output": "started"}],
        tools=[EXEC, NAMESPACE],
        max_output_tokens=16,
    )
    assert answer.status in ("completed", "incomplete")


def test_a_streamed_namespaced_call_carries_its_namespace(tiny):
    with tiny.responses.stream(
        model=MODEL, input="Start an agent.", tools=[NAMESPACE], tool_choice={"type": "function", "name": "spawn_agent"},
        max_output_tokens=80, temperature=0,
    ) as stream:
        events = list(stream)
    added = [event.item for event in events if event.type == "response.output_item.added"]
    assert [(item.type, item.namespace, item.name) for item in added] == [("function_call", "multi_agent_v1", "spawn_agent")]
    assert any(event.type == "response.function_call_arguments.delta" for event in events)
    [call] = events[-1].response.output
    assert call.namespace == "multi_agent_v1" and json.loads(call.arguments)


ISSUE = {"type": "custom", "name": "ticket", "description": "File a ticket id.", "format": {"type": "grammar", "syntax": "regex", "definition": r"^[A-Z]{3}-[0-9]{2,4}$"}}


def test_a_forced_custom_tool_with_a_regex_grammar_matches_it(tiny):
    response = forced(tiny, [ISSUE], {"type": "custom", "name": "ticket"}, "File ticket ABC-123.")
    [call] = response.output
    assert (call.type, call.name) == ("custom_tool_call", "ticket")
    assert re.fullmatch(r"[A-Z]{3}-[0-9]{2,4}", call.input), call.input
    answer = tiny.responses.create(
        model=MODEL,
        input=[call.model_dump(exclude_none=True), {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "filed"}],
        tools=[ISSUE],
        max_output_tokens=16,
    )
    assert answer.status in ("completed", "incomplete")


def test_a_regex_with_rust_escapes_is_kept_too(tiny):
    """\\d, \\., (?:...) and an escaped '-' in a class: what llama.cpp's converter does not read."""
    version = {"type": "custom", "name": "release", "format": {"type": "grammar", "syntax": "regex", "definition": r"^v(?:\d{1,2})\.\d{1,2}[\-a-z]{0,3}$"}}
    response = forced(tiny, [version], {"type": "custom", "name": "release"}, "Release version v1.2-rc.")
    [call] = response.output
    assert re.fullmatch(r"v(?:\d{1,2})\.\d{1,2}[\-a-z]{0,3}", call.input), call.input


def test_a_streamed_custom_tool_call_sends_its_input(tiny):
    with tiny.responses.stream(
        model=MODEL, input="File ticket ABC-123.", tools=[ISSUE], tool_choice={"type": "custom", "name": "ticket"},
        max_output_tokens=80, temperature=0,
    ) as stream:
        events = list(stream)
    [done] = [event for event in events if event.type == "response.custom_tool_call_input.done"]
    assert re.fullmatch(r"[A-Z]{3}-[0-9]{2,4}", done.input)
    [call] = events[-1].response.output
    assert call.type == "custom_tool_call" and call.input == done.input


def test_a_forced_lark_custom_tool_is_refused_naming_the_choice(tiny):
    lark = {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
    with pytest.raises(openai.BadRequestError) as refused:
        forced(tiny, [lark], {"type": "custom", "name": "apply_patch"}, "Patch it.")
    assert refused.value.body["param"] == "tool_choice.name" and "Lark grammar" in refused.value.body["message"]


def test_a_local_shell_call_is_a_local_shell_call_item_and_its_output_is_read(tiny):
    response = forced(tiny, [{"type": "local_shell"}], "required", "List the files with ls.")
    [call] = response.output
    assert call.type == "local_shell_call" and call.action.type == "exec"
    assert isinstance(call.action.command, list) and all(isinstance(part, str) for part in call.action.command)
    answer = tiny.responses.create(
        model=MODEL,
        input=[
            call.model_dump(exclude_none=True),
            {"type": "local_shell_call_output", "id": call.call_id, "call_id": call.call_id, "output": "a.py b.py"},
        ],
        tools=[{"type": "local_shell"}],
        max_output_tokens=16,
    )
    assert answer.status in ("completed", "incomplete")


def test_a_shell_call_is_a_shell_call_item(client, tiny):
    response = forced(client, [{"type": "shell"}], {"type": "shell"}, "List the files with ls.", DEFAULT)
    [call] = response.output
    assert call.type == "shell_call" and all(isinstance(command, str) for command in call.action.commands)
    output = [{"stdout": "a.py", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]
    # Sent back to tiny: its replay is the server's translation, whichever model made the call.
    answer = tiny.responses.create(
        model=MODEL,
        input=[call.model_dump(exclude_none=True), {"type": "shell_call_output", "call_id": call.call_id, "output": output}],
        tools=[{"type": "shell"}],
        max_output_tokens=16,
    )
    assert answer.status in ("completed", "incomplete")


def test_an_apply_patch_call_is_an_apply_patch_call_item(client, tiny):
    response = forced(client, [{"type": "apply_patch"}], {"type": "apply_patch"}, "Create the file hello.txt saying hi.", DEFAULT)
    [call] = response.output
    assert call.type == "apply_patch_call"
    assert call.operation.type in ("create_file", "update_file", "delete_file") and isinstance(call.operation.path, str)
    # Sent back to tiny: its replay is the server's translation, whichever model made the call.
    answer = tiny.responses.create(
        model=MODEL,
        input=[
            call.model_dump(exclude_none=True),
            {"type": "apply_patch_call_output", "call_id": call.call_id, "status": "completed", "output": "done"},
        ],
        tools=[{"type": "apply_patch"}],
        max_output_tokens=16,
    )
    assert answer.status in ("completed", "incomplete")


# Each case's tools, choice, input, and whether the real model answers it (its strings are
# bounded by no schema of theirs: on noise the call is cut at max_output_tokens).
FORCED = {
    "namespace": ([NAMESPACE], {"type": "function", "name": "spawn_agent"}, "Start an agent.", False),
    "custom-regex": ([ISSUE], {"type": "custom", "name": "ticket"}, "File ticket ABC-123.", False),
    "custom-text": ([{"type": "custom", "name": "note", "description": "Write a note."}], {"type": "custom", "name": "note"}, "Note: buy milk.", True),
    "local_shell": ([{"type": "local_shell"}], "required", "List the files.", False),
    "shell": ([{"type": "shell"}], {"type": "shell"}, "List the files.", True),
    "apply_patch": ([{"type": "apply_patch"}], {"type": "apply_patch"}, "Create hello.txt.", True),
}


@pytest.mark.parametrize("case", FORCED, ids=list(FORCED))
def test_each_forced_call_streams_events_valid_for_the_document_and_is_listed_back(client, tiny, case):
    tools, choice, text, real = FORCED[case]
    client, model = (client, DEFAULT) if real else (tiny, MODEL)
    # One call: "required" lets a model make several (parallel_tool_calls' default), and on the
    # shared server's pool a greedy answer made two once (CI, stop 64).
    with client.responses.stream(
        model=model, input=text, tools=tools, tool_choice=choice, max_output_tokens=80, temperature=0, parallel_tool_calls=False,
    ) as stream:
        events = [event.model_dump(exclude_unset=True) for event in stream]
    for event in events:
        validate_event(event)
    [call] = events[-1]["response"]["output"]
    call.pop("parsed_arguments", None)  # the SDK's own, not the item's
    # The call sent back with an output, stored: its input items are listed as the document's.
    output = {
        "function_call": {"type": "function_call_output", "output": "ok"},
        "custom_tool_call": {"type": "custom_tool_call_output", "output": "ok"},
        "local_shell_call": {"type": "local_shell_call_output", "id": call["call_id"], "output": "ok"},
        "shell_call": {"type": "shell_call_output", "output": [{"stdout": "ok", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
        "apply_patch_call": {"type": "apply_patch_call_output", "status": "completed", "output": "ok"},
    }[call["type"]]
    answer = tiny.responses.create(  # the replay is the server's, whichever model made the call
        model=MODEL, input=[call, {**output, "call_id": call["call_id"]}], tools=tools, max_output_tokens=16
    )
    listed = tiny.get(f"/responses/{answer.id}/input_items", cast_to=object)
    for item in listed["data"]:
        ITEM_RESOURCE.validate(item)
