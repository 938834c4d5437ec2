"""The table of what OpenAI's API accepts beyond its document (spec/leniency.py): relaxed
in the document Connexion serves (never in the vendored file), filled in with OpenAI's
defaults, and listed in docs/CONFORMANCE.md."""

from __future__ import annotations

from pathlib import Path

from llm_backend.spec import adapter, leniency
from tests.support.document import openai_document

DOCS = Path(__file__).resolve().parents[2] / "docs" / "CONFORMANCE.md"


def test_each_entry_is_optional_in_the_served_document_and_still_required_in_the_vendored_one():
    document = openai_document()
    served = adapter.prepare(document)["components"]["schemas"]
    for entry in leniency.TABLE:
        assert entry.field in document["components"]["schemas"][entry.schema]["required"], entry
        assert entry.field not in served[entry.schema]["required"], entry
        assert entry.field in served[entry.schema]["properties"], entry


def test_fill_sets_openais_defaults_where_left_out_and_keeps_what_was_sent():
    body = {
        "tools": [{"type": "function", "name": "f", "parameters": {}}, {"type": "function", "name": "g", "strict": False}],
        "input": [
            {"role": "assistant", "content": [{"type": "output_text", "text": "hi"}]},
            {"role": "user", "content": [{"type": "input_image", "image_url": "x", "detail": "low"}]},
        ],
    }
    assert leniency.fill(body, "createResponse")
    assert [tool["strict"] for tool in body["tools"]] == [True, False]
    assistant = body["input"][0]
    assert assistant["type"] == "message" and assistant["status"] == "completed" and assistant["id"].startswith("msg_")
    assert assistant["content"][0] == {"type": "output_text", "text": "hi", "annotations": [], "logprobs": []}
    assert body["input"][1]["content"][0]["detail"] == "low"
    assert not leniency.fill(body, "createResponse")  # nothing left to fill


def test_fill_leaves_the_clients_own_data_and_other_operations_alone():
    schema = {"type": "object", "properties": {"part": {"type": "output_text"}}}  # a JSON schema, not a part
    body = {"tools": [{"type": "function", "name": "f", "strict": True, "parameters": schema}], "metadata": {}}
    assert not leniency.fill(body, "createResponse")
    assert "annotations" not in schema["properties"]["part"]
    chat = {"messages": [{"role": "assistant", "content": [{"type": "output_text", "text": "x"}]}]}
    assert not leniency.fill(chat, "createChatCompletion")


def test_docs_conformance_lists_every_entry_with_its_default():
    text = DOCS.read_text()
    for where, default, _ in leniency.rows():
        assert f"`{where}`" in text and default in text, where


# What Codex 0.171 sends on the items of its history with OpenAI's own provider (a developer
# message's; its rollouts show the same on assistant messages, reasoning items and calls).
PASSTHROUGH = {"content_item_kinds": ["model.base_instructions"], "turn_id": "01a22726", "create_time": 1788214171.12}


def test_an_items_passthrough_metadata_is_a_known_field_of_every_input_item_and_bounded():
    served = adapter.prepare(openai_document())["components"]["schemas"]
    members = leniency._members(served, "InputItem")
    assert {"EasyInputMessage", "InputMessage", "OutputMessage", "ReasoningItem", "FunctionToolCall", "FunctionCallOutputItemParam",
            "CustomToolCall", "CompactionSummaryItemParam"} <= set(members)
    field = "internal_chat_message_metadata_passthrough"
    for name in members:
        assert served[name]["properties"][field]["type"] == "object", name
    assert field not in openai_document()["components"]["schemas"]["InputMessage"]["properties"]  # the vendored file untouched


def test_fill_drops_an_items_passthrough_metadata_from_a_body_served_here():
    body = {"input": [
        {"type": "message", "id": "msg_1", "role": "developer", "content": "Be brief.", "internal_chat_message_metadata_passthrough": PASSTHROUGH},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "internal_chat_message_metadata_passthrough": {"turn_id": "t"}},
        {"role": "user", "content": "Hi"},
    ], "tools": [{"type": "function", "name": "f", "strict": True, "parameters": {"properties": {"internal_chat_message_metadata_passthrough": {}}}}]}
    assert leniency.fill(body, "createResponse")
    assert all("internal_chat_message_metadata_passthrough" not in item for item in body["input"])
    assert body["tools"][0]["parameters"]["properties"] == {"internal_chat_message_metadata_passthrough": {}}  # the client's own schema
