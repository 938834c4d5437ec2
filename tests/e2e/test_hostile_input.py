"""Hostile input, as an outside tester sends it: every case gets an OpenAI-shaped 4xx (or
the right success), the server stays healthy, and nothing is stored. Grows with every bug
found (a new case per bug, named after it)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS

# Every request below passes verify=TLS (one SSL context for the run): a top-level httpx
# call builds its own otherwise, ~25 ms of CPU, and each of the 70 cases makes four or more.
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def assert_openai_4xx(response: httpx.Response, *statuses: int) -> dict:
    assert 400 <= response.status_code < 500, response.text
    if statuses:
        assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


@pytest.fixture
def stored_count(server):
    def count() -> int:
        return len(httpx.get(server.api + "/chat/completions", params={"limit": 100}, timeout=30, verify=TLS).json()["data"])

    return count


@pytest.fixture(autouse=True)
def still_healthy(server, stored_count):
    before = stored_count()
    yield
    assert httpx.get(server.base_url + "/health", timeout=10, verify=TLS).status_code == 200
    assert stored_count() == before, "a rejected request stored something"


def post(server, content: bytes, content_type: str | None = "application/json", **headers) -> httpx.Response:
    all_headers = {**({"content-type": content_type} if content_type else {}), **headers}
    return httpx.post(server.api + "/chat/completions", content=content, headers=all_headers, timeout=60, verify=TLS)


@pytest.mark.parametrize(
    "content",
    [
        b'{"model": "smollm2", "messages": [',  # truncated
        b"\xff\xfe\x00{}",  # not UTF-8
        b'{"model": "smollm2", "messages": "\xc3\x28"}',  # invalid UTF-8 inside a string
        b"",  # empty
        b"null",
        b"[]",
        b'"a string"',
        b"1e999999",
        b"[" * 100_000 + b"]" * 100_000,  # deeply nested
        b'{"model": "smollm2", "model": 1, "messages": []}',  # a duplicate key
        b"NaN",
    ],
    ids=["truncated", "not-utf8", "bad-utf8-in-string", "empty", "null", "array", "string", "huge-number", "deep", "duplicate-key", "nan"],
)
def test_a_body_that_is_not_a_valid_request_object_is_400(server, content):
    assert_openai_4xx(post(server, content), 400)


def test_deeply_nested_values_inside_a_valid_request_are_400(server):
    nested = "[" * 50_000 + "]" * 50_000
    content = b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "metadata": ' + nested.encode() + b"}"
    assert_openai_4xx(post(server, content), 400)


def test_a_huge_array_of_messages_is_refused_without_harm(server):
    body = {**CHAT, "messages": [{"role": "user", "content": "x"}] * 200_000}
    response = post(server, json.dumps(body).encode())
    assert_openai_4xx(response, 400, 413)


@pytest.mark.parametrize(
    "field, value",
    [
        ("model", 7),
        ("messages", {"role": "user"}),
        ("messages", [{"role": "wizard", "content": "x"}]),
        ("temperature", "hot"),
        ("temperature", 2.5),
        ("temperature", -0.1),
        ("top_p", 1.5),
        ("n", 0),
        ("n", 129),
        ("max_tokens", "two"),
        ("presence_penalty", 3),
        ("frequency_penalty", -2.1),
        ("logprobs", "yes"),
        ("top_logprobs", 21),
        ("stop", [1, 2]),
        ("stream", "yes"),
        ("seed", 1.5),
        ("tools", [{"type": "function"}]),
        ("tool_choice", {"type": "function"}),
        ("response_format", {"type": "yaml"}),
        ("logit_bias", {"1": 101}),
        ("metadata", {"k": 1}),
        ("user", ["x"]),
    ],
)
def test_a_wrong_value_for_a_field_is_400_naming_it(server, field, value):
    error = assert_openai_4xx(post(server, json.dumps({**CHAT, field: value}).encode()), 400)
    assert error["param"] is not None and error["param"].split(".")[0].split("[")[0] == field


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_json_body_without_the_json_content_type_is_4xx(server, content_type):
    assert_openai_4xx(post(server, json.dumps(CHAT).encode(), content_type=content_type), 400, 415)


def test_a_huge_header_is_refused_and_the_server_stays_up(server):
    try:
        response = post(server, json.dumps(CHAT).encode(), **{"x-junk": "a" * 200_000})
    except httpx.HTTPError:
        return  # the server may close the connection on an oversized header: that is a refusal too
    assert 400 <= response.status_code < 500 or response.status_code == 200


def test_a_body_that_stops_arriving_does_not_hold_the_server(server):
    # Slow loris: announce a body, send half of it, keep the connection open.
    host, port = "127.0.0.1", server.port
    sockets = []
    for _ in range(20):
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + json.dumps(CHAT).encode()[:20]
        )
        sockets.append(sock)
    try:
        started = time.monotonic()
        response = httpx.post(server.api + "/chat/completions", json=CHAT, timeout=60, verify=TLS)
        assert response.status_code == 200 and time.monotonic() - started < 30
    finally:
        for sock in sockets:
            sock.close()


def test_a_malformed_multipart_upload_is_400(server):
    # Found by the fuzzer: starlette's parser raised, a 500.
    boundary = "9cc651cd2c8d168349f50fede4c361ac"
    response = httpx.post(
        server.api + "/files",
        content=f"--{boundary}\r\nFalse--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
        verify=TLS,
    )
    assert_openai_4xx(response, 400)


# --- Unknown fields: refused for local models as OpenAI refuses them (spec/unknown_fields.py) ---


def _post_json(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.api + path, json=body, timeout=60, verify=TLS)


@pytest.mark.parametrize("name", ["foo_unknown", "id_slot", "cache_prompt"])
def test_an_unknown_top_level_chat_field_is_refused_in_openais_words(server, name):
    response = _post_json(server, "/chat/completions", {**CHAT, name: 1})
    error = assert_openai_4xx(response, 400)
    assert error == {
        "message": f"Unrecognized request argument supplied: {name}",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_several_unknown_fields_are_named_together(server):
    error = assert_openai_4xx(_post_json(server, "/chat/completions", {**CHAT, "foo": 1, "bar": 2}), 400)
    assert error["message"] == "Unrecognized request arguments supplied: foo, bar"


@pytest.mark.parametrize(
    "path, body, param",
    [
        ("/chat/completions", {**CHAT, "response_format": {"type": "json_object", "schema": {"type": "object"}}}, "response_format.schema"),
        ("/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "Hi", "tool_call_id": "c1"}]}, "messages[0].tool_call_id"),
        ("/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {}}]}]}, "messages[0].content[0].cache_control"),
        ("/completions", {"model": MODEL, "prompt": "Hi", "max_tokens": 2, "stream_options": {"include_usage": True, "x": 1}}, "stream_options.x"),
        ("/responses", {"model": MODEL, "input": "Hi", "max_output_tokens": 16, "foo_unknown": 1}, "foo_unknown"),
        ("/responses", {"model": MODEL, "input": [{"role": "user", "content": "Hi", "bogus": 1}], "max_output_tokens": 16}, "input[0].bogus"),
        ("/conversations", {"metadata": {"a": "b"}, "foo_unknown": 1}, "foo_unknown"),
    ],
    ids=["json-object-schema", "user-message-tool-call-id", "content-part", "completion-stream-options", "response-top-level", "response-input-item", "conversation"],
)
def test_an_unknown_nested_or_newer_api_field_is_unknown_parameter(server, path, body, param):
    error = assert_openai_4xx(_post_json(server, path, body), 400)
    assert error == {
        "message": f"Unknown parameter: '{param}'.",
        "type": "invalid_request_error",
        "param": param,
        "code": "unknown_parameter",
    }


def test_an_unknown_embedding_field_is_refused_in_openais_words(server):
    error = assert_openai_4xx(_post_json(server, "/embeddings", {"model": MODEL, "input": "Hi", "top_k": 3}), 400)
    assert error["message"] == "Unrecognized request argument supplied: top_k" and error["param"] is None


def test_the_native_embedding_size_is_accepted_as_dimensions(server):
    native = len(_post_json(server, "/embeddings", {"model": MODEL, "input": "Hi"}).json()["data"][0]["embedding"])
    response = _post_json(server, "/embeddings", {"model": MODEL, "input": "Hi", "dimensions": native})
    assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == native
    assert_openai_4xx(_post_json(server, "/embeddings", {"model": MODEL, "input": "Hi", "dimensions": native - 1}), 400)


def test_a_tool_message_keeps_its_tool_call_id(server):
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert _post_json(server, "/chat/completions", {**CHAT, "messages": messages}).status_code == 200


# --- llama.cpp's extensions, honoured for local models (openapi/extensions.yaml) ---


@pytest.mark.parametrize("path, body", [("/chat/completions", CHAT), ("/completions", {"model": MODEL, "prompt": "Say:", "max_tokens": 8})])
def test_a_gbnf_grammar_shapes_the_output(server, path, body):
    response = _post_json(server, path, {**body, "max_tokens": 8, "grammar": 'root ::= "yes" | "no"'})
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert (choice.get("message") or {}).get("content", choice.get("text")) in ("yes", "no")


def test_a_grammar_that_does_not_parse_is_400_naming_it(server):
    error = assert_openai_4xx(_post_json(server, "/chat/completions", {**CHAT, "grammar": "root ::= ("}), 400)
    assert error["param"] == "grammar"


def test_a_grammar_with_a_response_format_is_400(server):
    body = {**CHAT, "grammar": 'root ::= "a"', "response_format": {"type": "json_object"}}
    assert assert_openai_4xx(_post_json(server, "/chat/completions", body), 400)["param"] == "grammar"


def test_top_k_one_is_greedy(server):
    # top_k 1 leaves one candidate: any temperature and seed gives the greedy answer.
    body = {**CHAT, "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 6}
    greedy = _post_json(server, "/chat/completions", {**body, "temperature": 0}).json()["choices"][0]["message"]["content"]
    for seed in (1, 2, 3):
        sampled = _post_json(server, "/chat/completions", {**body, "temperature": 1.5, "seed": seed, "top_k": 1})
        assert sampled.json()["choices"][0]["message"]["content"] == greedy


def test_min_p_and_repeat_penalty_are_accepted(server):
    response = _post_json(server, "/chat/completions", {**CHAT, "min_p": 0.1, "repeat_penalty": 1.2})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("field, value", [("top_k", -1), ("top_k", "3"), ("min_p", 1.5), ("repeat_penalty", 0), ("grammar", "")])
def test_an_extension_out_of_range_is_400_naming_it(server, field, value):
    error = assert_openai_4xx(_post_json(server, "/chat/completions", {**CHAT, field: value}), 400)
    assert error["param"] == field


# --- Found by the fuzzer once it reached real rows ---


def test_a_stored_assistant_text_item_is_a_valid_conversation_item(server):
    # Found by the fuzzer: an assistant message given as text came back without the
    # `logprobs` that the spec's OutputTextContent requires.
    from tests.conformance.checks import _payload_validator

    items = [{"type": "message", "role": "assistant", "content": "Hello"}]
    conversation = _post_json(server, "/conversations", {"items": items}).json()["id"]
    listed = httpx.get(f"{server.api}/conversations/{conversation}/items", timeout=30, verify=TLS).json()
    _payload_validator("ConversationItemList").validate(listed)
    assert listed["data"][0]["content"][0]["logprobs"] == []


def test_call_items_with_null_fields_are_stored_as_valid_items(server):
    # Found by the fuzzer: the request's nulls (status, file_id, ...) were stored and
    # listed as sent, and an image part without its `detail`, which OpenAI's item
    # resources do not allow.
    from tests.conformance.checks import _payload_validator

    items = [
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "status": None,
         "output": [{"type": "input_file", "file_id": None, "filename": None, "file_data": "", "file_url": "AAA", "detail": "auto"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"}]},
    ]
    conversation = _post_json(server, "/conversations", {"items": items}).json()["id"]
    listed = httpx.get(f"{server.api}/conversations/{conversation}/items", timeout=30, verify=TLS).json()
    _payload_validator("ConversationItemList").validate(listed)
    assert [item["status"] for item in listed["data"]] == ["completed", "completed"]



def test_what_the_client_owns_in_an_item_is_stored_as_sent_nulls_too(server):
    # Found by `make fuzz` (seed 1146571310): an MCP call's error `content` (required, any
    # value) sent as null was left out with every other null, and the listed item was not
    # one the document allows. A tool's schema is the client's too: its nulls mean something.
    from tests.conformance.checks import _payload_validator

    error = {"type": "mcp_tool_execution_error", "content": None}
    schema = {"type": "object", "properties": {"unit": {"type": ["string", "null"], "default": None}}}
    items = [
        {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "s", "tools": [{"name": "t", "input_schema": schema}]},
        {"type": "mcp_call", "id": "mcp_1", "server_label": "s", "name": "t", "arguments": "{}", "error": error, "output": None},
    ]
    conversation = _post_json(server, "/conversations", {"items": items}).json()["id"]
    listed = httpx.get(f"{server.api}/conversations/{conversation}/items?order=asc", timeout=30, verify=TLS).json()
    _payload_validator("ConversationItemList").validate(listed)
    tools, call = listed["data"]
    assert tools["tools"][0]["input_schema"] == schema and call["error"] == error and "output" not in call