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


def test_every_lanes_body_check_refuses_a_local_body_with_an_unknown_field():
    from llm_backend.errors import OpenAIError
    from llm_backend.spec.validation import check_body

    # Outside a request the local rule applies: the one check every lane calls refuses it.
    check_body(body_schema("/chat/completions"), chat(), "createChatCompletion")
    with pytest.raises(OpenAIError) as refused:
        check_body(body_schema("/chat/completions"), chat(foo=1), "createChatCompletion")
    assert refused.value.message == "Unrecognized request argument supplied: foo"


def test_alike_messages_with_content_parts_are_walked_once_and_each_unknown_field_found():
    # A long list of alike items with nested parts is walked once per shape (150 000 such
    # messages walked one by one took 3.9 s of CPU); a different item is still walked.
    part = {"type": "text", "text": "hi"}
    messages = [{"role": "user", "content": [part]}] * 1000 + [{"role": "user", "content": [{**part, "foo": 1}]}]
    assert unknown_fields(body_schema("/chat/completions"), chat(messages=messages), "createChatCompletion") == [
        "messages[1000].content[0].foo"
    ]
