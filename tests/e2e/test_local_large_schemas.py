"""Tools whose schemas carry bounds past the grammar's budget (issue #49): a script of
``maxLength: 524288`` (Claude Code's ``Workflow`` tool), a list of ``maxItems: 100000``.
OpenAI serves them; here the engine makes such a bound unbounded repetition, exact when no
answer of the request can reach it (backends/llama/schema_bounds.py). Through the official
SDK on the real model, chat completions and Responses, each call forced by name."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from tests.conftest import MODEL

WORKFLOW = {
    "name": "Workflow",
    "description": "Run a workflow script.",
    "parameters": {
        "type": "object",
        "properties": {"script": {"type": "string", "maxLength": 524288, "description": "The script to run."}},
        "required": ["script"],
        "additionalProperties": False,
    },
}
READ_FILES = {
    "name": "read_files",
    "description": "Read files.",
    "parameters": {
        "type": "object",
        "properties": {"paths": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 100000}},
        "required": ["paths"],
        "additionalProperties": False,
    },
}
# SmolLM2's greedy list of paths can go on repeating an item until max_tokens (it did once in
# CI: its shared KV pool makes a greedy answer follow in its last bits what ran beside it), so
# the list is nudged shut: SmolLM2's ``"]`` token (3222) made likelier, the grammar still
# choosing what may come, the answer still the model's own.
CLOSE_THE_LIST = {"3222": 3}
ASK = {
    "Workflow": [{"role": "user", "content": "Run a script that prints hello."}],
    "read_files": [{"role": "user", "content": "Read the files a.py and b.py."}],
}


def chat_call(client: openai.OpenAI, function: dict, strict: bool | None = None):
    tool = {"type": "function", "function": {**function, **({"strict": strict} if strict is not None else {})}}
    return client.chat.completions.create(
        model=MODEL,
        messages=ASK[function["name"]],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": function["name"]}},
        max_tokens=120,
        temperature=0,
        logit_bias=CLOSE_THE_LIST,
    )


@pytest.mark.parametrize("function", [WORKFLOW, READ_FILES], ids=["max-length-524288", "max-items-100000"])
def test_a_forced_call_of_a_tool_with_a_bound_past_the_budget_is_served_and_valid(client, function):
    completion = chat_call(client, function)
    choice = completion.choices[0]
    assert choice.finish_reason != "length"  # the arguments ended: no cut JSON
    [call] = choice.message.tool_calls
    assert call.function.name == function["name"]
    jsonschema.validate(json.loads(call.function.arguments), function["parameters"])


@pytest.mark.parametrize("function", [WORKFLOW, READ_FILES], ids=["max-length-524288", "max-items-100000"])
def test_the_same_tool_is_served_through_responses(client, function):
    response = client.responses.create(
        model=MODEL,
        input=ASK[function["name"]][0]["content"],
        tools=[{"type": "function", **function, "strict": False}],
        tool_choice={"type": "function", "name": function["name"]},
        max_output_tokens=120,
        temperature=0,
    )
    [call] = [item for item in response.output if item.type == "function_call"]
    assert call.name == function["name"] and call.status == "completed"
    jsonschema.validate(json.loads(call.arguments), function["parameters"])


def test_a_strict_tool_whose_bound_no_answer_can_reach_is_served_exactly(client):
    # 120 tokens of this vocabulary hold far fewer than 524288 characters: the unbounded
    # string is the schema's own, so strict holds.
    call = chat_call(client, WORKFLOW, strict=True).choices[0].message.tool_calls[0]
    jsonschema.validate(json.loads(call.function.arguments), WORKFLOW["parameters"])


def test_a_strict_tool_whose_minimum_a_grammar_cannot_keep_is_400_naming_it(client):
    floor = {**READ_FILES, "parameters": {**READ_FILES["parameters"], "properties": {
        "paths": {"type": "array", "items": {"type": "string"}, "minItems": 100000}}}}
    with pytest.raises(openai.BadRequestError) as raised:
        chat_call(client, floor, strict=True)
    assert raised.value.code == "invalid_function_parameters" and raised.value.param == "tools"
    assert "'minItems' is 100000" in raised.value.message and "'strict' to false" in raised.value.message
    # Not strict: served, the grammar asking for as many items as it holds.
    completion = chat_call(client, floor)
    assert completion.choices[0].message.tool_calls[0].function.name == "read_files"


def test_a_streamed_forced_call_of_such_a_tool_is_valid_too(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=ASK["Workflow"],
        tools=[{"type": "function", "function": WORKFLOW}],
        tool_choice={"type": "function", "function": {"name": "Workflow"}},
        max_tokens=120,
        temperature=0,
        stream=True,
    )
    arguments = "".join(
        call.function.arguments or ""
        for chunk in stream
        for choice in chunk.choices
        for call in choice.delta.tool_calls or []
    )
    jsonschema.validate(json.loads(arguments), WORKFLOW["parameters"])
