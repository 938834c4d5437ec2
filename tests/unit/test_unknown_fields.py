"""Which fields of a body the operation does not define (spec/unknown_fields.py), on the
request schemas as the server validates them (Connexion's, $refs resolved)."""

from __future__ import annotations

import functools

import pytest
from connexion.spec import OpenAPISpecification

from llm_backend.spec.adapter import prepare
from llm_backend.spec.unknown_fields import unknown_fields, unknown_fields_error
from tests.support.document import openai_document


@functools.cache
def body_schema(path: str) -> dict:
    specification = OpenAPISpecification(prepare(openai_document()))
    return specification["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def chat(**extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": "Hi"}], **extra}


def test_a_plain_chat_body_has_no_unknown_field():
    assert unknown_fields(body_schema("/chat/completions"), chat(temperature=0.5, metadata={"any": "key"}), "createChatCompletion") == []


def test_a_field_is_known_by_the_branch_its_discriminator_picks():
    schema = body_schema("/chat/completions")
    user = chat(messages=[{"role": "user", "content": "Hi", "tool_call_id": "c1"}])
    tool = chat(messages=[{"role": "tool", "content": "Hi", "tool_call_id": "c1"}])
    assert unknown_fields(schema, user, "createChatCompletion") == ["messages[0].tool_call_id"]
    assert unknown_fields(schema, tool, "createChatCompletion") == []


def test_alike_list_items_are_each_named_by_their_index():
    messages = [{"role": "user", "content": "a", "x": 1}, {"role": "user", "content": "a"}, {"role": "user", "content": "a", "x": 1}]
    assert unknown_fields(body_schema("/chat/completions"), chat(messages=messages), "createChatCompletion") == [
        "messages[0].x",
        "messages[2].x",
    ]


def test_free_form_objects_take_any_key():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "anything": {"goes": 1}}}}]
    assert unknown_fields(body_schema("/chat/completions"), chat(tools=tools), "createChatCompletion") == []


def test_llama_extensions_are_known_only_where_they_are_honoured():
    assert unknown_fields(body_schema("/chat/completions"), chat(top_k=3, grammar="root ::= \"a\""), "createChatCompletion") == []
    assert unknown_fields(body_schema("/embeddings"), {"model": "m", "input": "x", "top_k": 3}, "createEmbedding") == ["top_k"]


def test_a_required_key_the_properties_forget_is_known():
    # The document's MCPApprovalResponse requires `request_id` but lists `approval_request_id`.
    item = {"type": "mcp_approval_response", "request_id": "r1", "approval_request_id": "r1", "approve": True}
    assert unknown_fields(body_schema("/responses"), {"model": "m", "input": [item]}, "createResponse") == []


@pytest.mark.parametrize(
    "fields, operation, expected",
    [
        (["foo"], "createChatCompletion", ("Unrecognized request argument supplied: foo", None, None)),
        (["foo", "bar"], "createCompletion", ("Unrecognized request arguments supplied: foo, bar", None, None)),
        (["response_format.schema"], "createChatCompletion", ("Unknown parameter: 'response_format.schema'.", "response_format.schema", "unknown_parameter")),
        (["foo"], "createResponse", ("Unknown parameter: 'foo'.", "foo", "unknown_parameter")),
    ],
)
def test_the_error_is_in_openais_words_for_the_operation(fields, operation, expected):
    error = unknown_fields_error(fields, operation)
    assert (error.message, error.param, error.code) == expected and error.status == 400


def test_the_fast_lane_hands_a_local_body_with_an_unknown_field_to_connexion():
    from llm_backend.spec.validation import is_valid_body

    # Outside a request the local rule applies: the lane's check refuses, Connexion reports.
    is_valid = is_valid_body(body_schema("/chat/completions"), "createChatCompletion")
    assert is_valid(chat()) and not is_valid(chat(foo=1))
