"""Stored chat completions of upstream models: the gateway keeps them as the client got
them, streamed or not, and the request goes upstream unchanged (``store`` included)."""

from __future__ import annotations

from tests.conftest import MODEL
from tests.upstream.conftest import sdk

MESSAGES = [{"role": "user", "content": "Name a colour."}]


def test_a_stored_chat_completion_of_an_upstream_model_is_kept_here(gateway):
    client = sdk(gateway)
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=6, store=True, metadata={"case": "whole"}
    )
    stored = client.chat.completions.retrieve(completion.id)
    assert stored.choices[0].message.content == completion.choices[0].message.content
    assert stored.metadata == {"case": "whole"}
    messages = client.chat.completions.messages.list(completion.id)
    assert [message.content for message in messages.data] == ["Name a colour."]


def test_a_streamed_stored_chat_completion_of_an_upstream_model_is_kept_as_streamed(gateway):
    client = sdk(gateway)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=6, store=True, stream=True, metadata={"case": "stream"}
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text
    # Committed before the stream's [DONE]: listed the moment the stream ends.
    listed = client.chat.completions.list(metadata={"case": "stream"})
    assert [item.id for item in listed.data] == [chunks[0].id]
    assert listed.data[0].choices[0].message.content == text
    assert listed.data[0].choices[0].finish_reason == chunks[-1].choices[0].finish_reason


def test_store_is_forwarded_so_the_upstream_keeps_its_own_copy(gateway, server):
    completion = sdk(gateway).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4, store=True)
    assert sdk(server).chat.completions.retrieve(completion.id).id == completion.id


def test_a_failed_upstream_answer_is_not_stored(gateway):
    client = sdk(gateway)
    before = client.chat.completions.list(metadata={"case": "failed"}).data
    try:
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=4, store=True, metadata={"case": "failed"}, logit_bias={"99999999": 1}
        )
    except Exception as exc:  # the upstream refuses the unknown token id with a 400
        assert getattr(exc, "status_code", None) == 400
    else:
        raise AssertionError("the upstream accepted an unknown token id")
    assert client.chat.completions.list(metadata={"case": "failed"}).data == before
