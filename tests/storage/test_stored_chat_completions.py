"""OpenAI's stored chat completions through the official SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.storage.conftest import KEY_A, sdk

MESSAGES = [{"role": "user", "content": "Say hello."}]


def create(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(
        model=MODEL, messages=kwargs.pop("messages", MESSAGES), max_tokens=kwargs.pop("max_tokens", 2), **kwargs
    )


def tag() -> dict[str, str]:
    """A metadata pair no other test uses, to list only this test's completions."""
    return {"test": uuid.uuid4().hex}


@pytest.fixture(scope="module")
def kept(store_server):
    """One stored completion of owner A that no test changes."""
    client = sdk(store_server, KEY_A)
    return create(client, store=True, metadata={"keep": "me"})


def wait_for_row(server_db, completion_id: str, timeout: float = 30):
    """The (status, store) of a row written after the response (streams): wait until it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server_db.chat_completions.status(completion_id)
        if found:
            return found
        time.sleep(0.05)
    return None


def test_store_true_keeps_the_answer_usage_and_metadata(owner_a):
    metadata = {"topic": "greeting", **tag()}
    created = create(owner_a, store=True, metadata=metadata)
    stored = owner_a.chat.completions.retrieve(created.id)
    assert stored.id == created.id and stored.object == "chat.completion"
    assert stored.model == MODEL and stored.created == created.created
    assert stored.choices[0].message.content == created.choices[0].message.content
    assert stored.usage == created.usage
    assert stored.metadata == metadata


def test_stored_messages_are_the_request_messages(owner_a):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi."}]},
    ]
    created = create(owner_a, store=True, messages=messages)
    listed = owner_a.chat.completions.messages.list(created.id)
    assert [m.role for m in listed.data] == ["system", "user"]
    assert [m.id for m in listed.data] == [f"{created.id}-0", f"{created.id}-1"]
    assert listed.data[0].content == "Be brief." and listed.data[0].content_parts is None
    assert listed.data[1].content == "Say hi."
    assert [part.text for part in listed.data[1].content_parts] == ["Say ", "hi."]


def test_messages_paginate_with_after_limit_and_order(owner_a):
    messages = [{"role": "user", "content": f"Message {n}."} for n in range(5)]
    created = create(owner_a, store=True, messages=messages)
    first = owner_a.chat.completions.messages.list(created.id, limit=2)
    assert [m.content for m in first.data] == ["Message 0.", "Message 1."] and first.has_more
    everything = [m.content for m in owner_a.chat.completions.messages.list(created.id, limit=2)]
    assert everything == [f"Message {n}." for n in range(5)]
    newest = owner_a.chat.completions.messages.list(created.id, order="desc", limit=1)
    assert newest.data[0].content == "Message 4."


def test_without_store_nothing_is_listed_but_the_audit_setting_keeps_it(owner_a, server_db):
    created = create(owner_a, metadata=tag())
    with pytest.raises(openai.NotFoundError):
        owner_a.chat.completions.retrieve(created.id)
    assert server_db.chat_completions.status(created.id) == ("completed", False)


def test_stream_is_stored_assembled_when_it_ends(owner_a, server_db):
    stream = create(owner_a, store=True, stream=True, max_tokens=6)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert wait_for_row(server_db, chunks[0].id) == ("completed", True)
    stored = owner_a.chat.completions.retrieve(chunks[0].id)
    assert stored.object == "chat.completion"
    assert stored.choices[0].message.content == text
    assert stored.choices[0].finish_reason == chunks[-1].choices[0].finish_reason


def test_stream_left_early_is_stored_as_incomplete(store_server, owner_a, server_db):
    # The end-of-text tokens are banned so the answer cannot end by itself before the server
    # sees the client go: a sampled answer that stopped after a few tokens was stored as
    # completed (CI, stop 53), which says nothing about leaving early.
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count from 1 to 200, one number per line."}],
        "max_tokens": 1500,
        "logit_bias": {"0": -100, "2": -100},
        "stream": True,
        "store": True,
    }
    headers = {"Authorization": f"Bearer {KEY_A}"}
    with httpx.stream("POST", store_server.api + "/chat/completions", json=body, headers=headers, timeout=60) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
    completion_id = httpx.Response(200, content=first[6:]).json()["id"]
    assert wait_for_row(server_db, completion_id) == ("incomplete", True)
    stored = owner_a.chat.completions.retrieve(completion_id)
    assert stored.choices[0].finish_reason == "length"


def test_list_filters_by_model_and_metadata(owner_a):
    mine = tag()
    wanted = create(owner_a, store=True, metadata={**mine, "kind": "wanted"})
    create(owner_a, store=True, metadata={**mine, "kind": "other"})
    found = owner_a.chat.completions.list(metadata={**mine, "kind": "wanted"})
    assert [c.id for c in found.data] == [wanted.id]
    assert found.first_id == found.last_id == wanted.id and not found.has_more
    assert len(owner_a.chat.completions.list(metadata=mine, model=MODEL).data) == 2
    assert owner_a.chat.completions.list(metadata=mine, model="another-model").data == []


def test_list_paginates_with_after_limit_and_order(owner_a):
    mine = tag()
    ids = [create(owner_a, store=True, metadata=mine).id for _ in range(3)]
    page = owner_a.chat.completions.list(metadata=mine, limit=2)
    assert [c.id for c in page.data] == ids[:2] and page.has_more
    assert page.first_id == ids[0] and page.last_id == ids[1]
    rest = owner_a.chat.completions.list(metadata=mine, limit=2, after=page.last_id)
    assert [c.id for c in rest.data] == ids[2:] and not rest.has_more
    assert [c.id for c in owner_a.chat.completions.list(metadata=mine, limit=2)] == ids
    assert [c.id for c in owner_a.chat.completions.list(metadata=mine, order="desc")] == ids[::-1]


def test_empty_list_is_a_valid_envelope(owner_a):
    empty = owner_a.chat.completions.list(metadata=tag())
    assert empty.data == [] and empty.has_more is False and empty.object == "list"


def test_update_changes_only_the_metadata(owner_a):
    created = create(owner_a, store=True, metadata={"a": "1", "b": "2"})
    updated = owner_a.chat.completions.update(created.id, metadata={"a": "changed", "c": "3"})
    assert updated.metadata == {"a": "changed", "c": "3"}
    stored = owner_a.chat.completions.retrieve(created.id)
    assert stored.metadata == {"a": "changed", "c": "3"}
    assert stored.choices == created.choices and stored.usage == created.usage
    assert [c.id for c in owner_a.chat.completions.list(metadata={"a": "changed", "c": "3"})] == [created.id]
    assert created.id not in [c.id for c in owner_a.chat.completions.list(metadata={"a": "1", "b": "2"})]


def test_delete_answers_a_deletion_object_and_removes_it(owner_a):
    created = create(owner_a, store=True)
    deleted = owner_a.chat.completions.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "chat.completion.deleted")
    with pytest.raises(openai.NotFoundError):
        owner_a.chat.completions.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        owner_a.chat.completions.delete(created.id)


def test_another_key_cannot_list_read_update_or_delete(owner_a, owner_b):
    mine = tag()
    created = create(owner_a, store=True, metadata=mine)
    assert owner_b.chat.completions.list(metadata=mine).data == []
    for attempt in (
        lambda: owner_b.chat.completions.retrieve(created.id),
        lambda: owner_b.chat.completions.update(created.id, metadata={"stolen": "yes"}),
        lambda: owner_b.chat.completions.messages.list(created.id),
        lambda: owner_b.chat.completions.delete(created.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert owner_a.chat.completions.retrieve(created.id).metadata == mine
    with pytest.raises(openai.NotFoundError):
        owner_b.chat.completions.list(after=created.id)


def test_unknown_id_is_not_found_for_every_operation(owner_a):
    for attempt in (
        lambda: owner_a.chat.completions.retrieve("chatcmpl-unknown"),
        lambda: owner_a.chat.completions.update("chatcmpl-unknown", metadata={}),
        lambda: owner_a.chat.completions.delete("chatcmpl-unknown"),
        lambda: owner_a.chat.completions.messages.list("chatcmpl-unknown"),
        lambda: owner_a.chat.completions.list(after="chatcmpl-unknown"),
    ):
        with pytest.raises(openai.NotFoundError) as raised:
            attempt()
        assert raised.value.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "metadata, param",
    [
        ({f"k{n}": "v" for n in range(17)}, "metadata"),
        ({"k" * 65: "v"}, "metadata"),
        ({"k": "v" * 513}, "metadata.k"),
    ],
    ids=["17-pairs", "key-65-chars", "value-513-chars"],
)
def test_over_long_metadata_is_rejected_and_changes_nothing(owner_a, kept, server_db, metadata, param):
    with pytest.raises(openai.BadRequestError) as raised:
        owner_a.chat.completions.update(kept.id, metadata=metadata)
    assert raised.value.param == param
    assert owner_a.chat.completions.retrieve(kept.id).metadata == {"keep": "me"}
    before = server_db.chat_completions.count()
    with pytest.raises(openai.BadRequestError):
        create(owner_a, store=True, metadata=metadata)
    assert server_db.chat_completions.count() == before


def test_metadata_at_the_limits_is_accepted(owner_a):
    metadata = {f"{n:02d}" + "k" * 62: "v" * 512 for n in range(16)}
    created = create(owner_a, store=True, metadata=metadata)
    assert owner_a.chat.completions.retrieve(created.id).metadata == metadata


def test_malformed_metadata_is_rejected_and_changes_nothing(store_server, owner_a, kept):
    created = kept
    headers = {"Authorization": f"Bearer {KEY_A}"}
    for bad in ({"metadata": {"n": 1}}, {"metadata": "text"}, {}):
        response = httpx.post(f"{store_server.api}/chat/completions/{created.id}", json=bad, headers=headers)
        assert response.status_code == 400
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert owner_a.chat.completions.retrieve(created.id).metadata == {"keep": "me"}


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_limit_out_of_range_is_rejected(owner_a, kept, limit):
    with pytest.raises(openai.BadRequestError) as raised:
        owner_a.chat.completions.list(limit=limit)
    assert raised.value.param == "limit"
    with pytest.raises(openai.BadRequestError):
        owner_a.chat.completions.messages.list(kept.id, limit=limit)
