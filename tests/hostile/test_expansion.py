"""Requests whose work expands past what they look like (issue #33): nesting, schemas whose
grammar explodes, per-token work (logit_bias, stop), batch lines past the body limit. Each is
answered with its result or an OpenAI-shaped 400 naming the limit, in bounded memory."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import MODEL
from tests.support.clients import sdk

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


def post(live, body: dict | bytes, path: str = "/chat/completions") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(live.api + path, content=content, headers={"content-type": "application/json"}, timeout=120)


def refused(answer: httpx.Response, param: str | None) -> dict:
    assert answer.status_code == 400, answer.text[:400]
    error = answer.json()["error"]
    assert error["param"] == param, error
    return error


def nested(depth: int) -> dict:
    value: dict = {"type": "string"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"x": value}}
    return value


@pytest.mark.parametrize("depth", [70, 500, 990], ids=["past-the-budget", "deep", "just-under-the-parser"])
def test_a_body_nested_past_the_budget_is_400(server, measured, depth):
    # Written out by hand: Python's own encoder stops near 1000 levels too.
    levels = depth // 2
    schema = '{"type": "object", "properties": {"x": ' * levels + '{"type": "string"}' + "}}" * levels
    body = json.dumps({**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "deep", "schema": "@"}}})
    with measured(server):
        answer = post(server, body.replace('"@"', schema).encode())
    error = refused(answer, None)
    assert "64 levels" in error["message"] or error["message"].startswith("We could not parse")


def test_a_schema_within_the_budget_still_works(server):
    body = {**CHAT, "max_tokens": 24, "temperature": 0, "response_format": {
        "type": "json_schema", "json_schema": {"name": "shallow", "schema": nested(6)}}}
    assert post(server, body).status_code == 200


@pytest.mark.parametrize(
    "schema, says",
    [
        ({"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(5001)}}, "5000 properties"),
        ({"type": "string", "enum": [f"v{i}" for i in range(1001)]}, "1000 enum values"),
    ],
    ids=["properties", "enum"],
)
def test_a_schema_whose_grammar_would_explode_is_400_before_it_is_built(server, measured, schema, says):
    body = {**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "big", "schema": schema}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": schema}}}}
    started = time.monotonic()
    with measured(server):
        as_format = post(server, body)
        as_tool = post(server, {**CHAT, "tools": [tool], "tool_choice": "required"})
    assert says in refused(as_format, "response_format.json_schema.schema")["message"]
    assert says in refused(as_tool, "tools[0].function.parameters")["message"]
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "string"}, "minItems": 100_000},
        {"type": "array", "items": {"type": "integer"}, "maxItems": 10_000_000},
        {"type": "string", "maxLength": 10_000_000},
        {"type": "string", "minLength": 10_000_000},
    ],
    ids=["min-items", "max-items", "max-length", "min-length"],
)
def test_repetitions_past_the_grammars_budget_are_served_without_expanding_it(server, measured, schema):
    # Issue #49: served (schema_bounds.py), the grammar within its budget whatever the numbers.
    body = {**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "big", "schema": schema}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": schema}}}}
    started = time.monotonic()
    with measured(server):
        as_format = post(server, body)
        as_tool = post(server, {**CHAT, "tools": [tool], "tool_choice": "required"})
    assert as_format.status_code == 200, as_format.text[:400]
    assert as_tool.status_code == 200, as_tool.text[:400]
    assert time.monotonic() - started < 30


def test_a_clients_own_grammar_past_its_budget_is_400_naming_grammar(server):
    grammar = 'root ::= "a"\n' + "".join(f'r{i} ::= "x"\n' for i in range(120_000))
    refused(post(server, {**CHAT, "grammar": grammar}), "grammar")


def test_per_token_work_is_bounded(server):
    refused(post(server, {**CHAT, "logit_bias": {str(i): 1 for i in range(1025)}}), "logit_bias")
    refused(post(server, {**CHAT, "stop": ["x" * 1001]}), "stop")
    assert post(server, {**CHAT, "logit_bias": {str(i): 1 for i in range(1024)}, "stop": ["y" * 1000]}).status_code == 200


# The batches below fail at validation, before any line runs: their servers load no model
# (~1 CPU-s less each; lines may still name it, the registry knows it).
LAZY = {"LLM_BACKEND_MODEL_LOAD": "lazy"}


def test_a_batch_line_past_the_body_limit_is_refused_unread(start_server, measured):
    live = start_server(env={"LLM_BACKEND_MAX_BODY_BYTES": "65536", **LAZY})
    client = sdk(live)
    line = {"custom_id": "big", "method": "POST", "url": "/v1/chat/completions",
            "body": {**CHAT, "messages": [{"role": "user", "content": "x" * 200_000}]}}
    small = {"custom_id": "small", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    content = (json.dumps(small) + "\n" + json.dumps(line) + "\n").encode()
    file = client.files.create(file=("lines.jsonl", content), purpose="batch")
    with measured(live):
        batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
        deadline = time.monotonic() + 60
        while batch.status in ("validating",) and time.monotonic() < deadline:
            time.sleep(0.2)
            batch = client.batches.retrieve(batch.id)
    assert batch.status == "failed", batch
    errors = batch.errors.data
    assert [(error.code, error.line) for error in errors] == [("request_too_large", 2)]


def test_a_batch_line_past_the_body_values_is_refused_unbuilt(start_server):
    # A line is a request: the values budget of a body (max_body_values) holds for it too,
    # counted before the line is built (an 8 MB line of [0] items: 2.8 million objects).
    live = start_server(env={"LLM_BACKEND_MAX_BODY_VALUES": "1000", **LAZY})
    client = sdk(live)
    small = {"custom_id": "small", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    many = {**small, "custom_id": "many", "body": {**CHAT, "logit_bias": {str(i): 1 for i in range(600)}}}
    content = (json.dumps(small) + "\n" + json.dumps(many) + "\n").encode()
    file = client.files.create(file=("lines.jsonl", content), purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 60
    while batch.status == "validating" and time.monotonic() < deadline:
        time.sleep(0.2)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "failed", batch
    assert [(error.code, error.line) for error in batch.errors.data] == [("invalid_body", 2)]
