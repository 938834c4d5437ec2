"""The Conversations API through the official SDK, and responses that carry one."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import MODEL


def create_response(client: openai.OpenAI, **kwargs):
    return client.responses.create(model=MODEL, max_output_tokens=16, **kwargs)


def test_a_conversation_is_created_retrieved_updated_and_deleted(client):
    conversation = client.conversations.create(metadata={"topic": "test"})
    assert conversation.id.startswith("conv_") and conversation.object == "conversation"
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "test"}
    updated = client.conversations.update(conversation.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}
    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)


def test_initial_items_are_listed_with_ids(client):
    conversation = client.conversations.create(items=[{"role": "user", "content": "Hello"}])
    [item] = client.conversations.items.list(conversation.id).data
    assert item.type == "message" and item.id.startswith("msg_") and item.content[0].text == "Hello"


def test_items_are_added_and_listed_newest_first_or_in_order(client):
    conversation = client.conversations.create()
    added = client.conversations.items.create(
        conversation.id,
        items=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}, {"role": "user", "content": "three"}],
    )
    assert [item.content[0].text for item in added.data] == ["one", "two", "three"]
    newest = client.conversations.items.list(conversation.id, limit=2)
    assert [item.content[0].text for item in newest.data] == ["three", "two"] and newest.has_more
    rest = client.conversations.items.list(conversation.id, order="asc", after=added.data[0].id)
    assert [item.content[0].text for item in rest.data] == ["two", "three"]


def test_an_item_is_retrieved_and_deleted(client):
    conversation = client.conversations.create(items=[{"role": "user", "content": "keep"}, {"role": "user", "content": "drop"}])
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert client.conversations.items.retrieve(items[1].id, conversation_id=conversation.id).id == items[1].id
    after = client.conversations.items.delete(items[1].id, conversation_id=conversation.id)
    assert after.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(items[1].id, conversation_id=conversation.id)
    assert [item.id for item in client.conversations.items.list(conversation.id).data] == [items[0].id]


def test_a_response_in_a_conversation_appends_its_input_and_output(client):
    conversation = client.conversations.create()
    response = create_response(client, conversation=conversation.id, input="Say hello.")
    assert response.conversation.id == conversation.id
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [item.type for item in items] == ["message", "message"]
    assert (items[0].role, items[0].content[0].text) == ("user", "Say hello.")
    assert items[1].id == response.output[0].id and items[1].content[0].text == response.output_text


def test_a_conversation_carries_history_and_reuses_the_prompt_cache(client):
    conversation = client.conversations.create(items=[{"role": "user", "content": "My name is Ann."}])
    first = create_response(client, conversation=conversation.id, input="Say hi.")
    second = create_response(client, conversation={"id": conversation.id}, input="What is my name?")
    assert second.usage.input_tokens > first.usage.input_tokens
    assert second.usage.input_tokens_details.cached_tokens > 0
    assert len(client.conversations.items.list(conversation.id).data) == 5


def test_a_streamed_response_in_a_conversation_appends_what_was_streamed(client):
    conversation = client.conversations.create()
    events = list(client.responses.create(model=MODEL, max_output_tokens=16, conversation=conversation.id, input="Hi", stream=True))
    final = events[-1].response
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert items[-1].id == final.output[0].id and items[-1].content[0].text == final.output_text


def test_unknown_conversation_ids_answer_404(client):
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve("conv_unknown")
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list("conv_unknown")
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.create("conv_unknown", items=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.conversations.delete("conv_unknown")


def test_image_items_are_kept_and_a_text_model_reading_them_refuses_the_image(client):
    """A conversation has no model: its images are kept as OpenAI keeps them (issue #60); a
    response that reads them with a model that cannot see answers the 400 naming the image."""
    image = {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"}
    conversation = client.conversations.create(items=[{"role": "user", "content": [image]}])
    [kept] = client.conversations.items.list(conversation.id).data
    assert kept.content[0].type == "input_image" and kept.content[0].image_url == "https://x/y.png"
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, conversation=conversation.id, input="What is it?", max_output_tokens=16)
    assert raised.value.body["param"] == "conversation" and "image" in raised.value.body["message"], raised.value.body


def test_file_and_audio_items_are_refused_naming_the_item(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.conversations.create(items=[{"role": "user", "content": [{"type": "input_file", "file_id": "file_x"}]}])
    assert raised.value.body["param"] == "items[0].content[0]"


KEY_A, KEY_B = "sk-test-conversations-a", "sk-test-conversations-b"


def test_each_key_sees_only_its_own_conversations(start_server):
    live = start_server(env={"LLM_BACKEND_API_KEYS": f"{KEY_A},{KEY_B}"})
    owner_a = openai.OpenAI(base_url=live.api, api_key=KEY_A, max_retries=0)
    owner_b = openai.OpenAI(base_url=live.api, api_key=KEY_B, max_retries=0)
    conversation = owner_a.conversations.create(items=[{"role": "user", "content": "secret"}])
    with pytest.raises(openai.NotFoundError):
        owner_b.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        owner_b.conversations.items.list(conversation.id)
    with pytest.raises(openai.NotFoundError):
        create_response(owner_b, conversation=conversation.id, input="What was the secret?")
    assert len(owner_a.conversations.items.list(conversation.id).data) == 1


def test_a_conversation_survives_a_restart_and_continues(start_server):
    live = start_server()
    client = openai.OpenAI(base_url=live.api, api_key="x", max_retries=0)
    conversation = client.conversations.create(items=[{"role": "user", "content": "My name is Ann."}])
    create_response(client, conversation=conversation.id, input="Say hi.")
    live.stop()
    live.start()
    assert len(client.conversations.items.list(conversation.id).data) == 3
    create_response(client, conversation=conversation.id, input="What is my name?")
    assert len(client.conversations.items.list(conversation.id).data) == 5


def test_a_conversation_created_without_a_body_is_an_empty_one(server, client):
    # The document makes the body optional; found by the strict fuzz checks (it was a 400).
    created = httpx.post(server.api + "/conversations", timeout=30)
    assert created.status_code == 200, created.text
    assert created.json()["object"] == "conversation"
    assert client.conversations.items.list(created.json()["id"]).data == []
    updated = httpx.post(f"{server.api}/conversations/{created.json()['id']}", timeout=30)
    assert (updated.status_code, updated.json()["error"]["param"]) == (400, "metadata")
