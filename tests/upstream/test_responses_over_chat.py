"""The Responses API served here for the models of an upstream that speaks only chat
completions (``responses: local`` in its ``upstreams:`` entry): the gateway (no local model)
keeps the state and produces the events; the upstream is asked for chat completions only.

The upstream is real (the session's live server with the real model) behind
``ChatOnlyUpstream``, which passes on chat completions and the model list and answers 404
to anything else, as llama-server does."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL
from tests.support.fake_upstreams import ChatOnlyUpstream
from tests.support.server import LiveServer
from tests.upstream.conftest import sdk


@pytest.fixture(scope="module")
def chat_only(server):
    with ChatOnlyUpstream(server.api) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def here(chat_only, tmp_path_factory) -> LiveServer:
    config = f"""
upstreams:
  - name: chat-only
    base_url: {chat_only.api}
    models: ["{MODEL}", "missing-*"]
    responses: local
"""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false"}
    with LiveServer(tmp_path_factory.mktemp("responses-here"), env=env, config=config) as live:
        yield live


def test_a_response_is_made_here_from_the_upstreams_chat_completion_and_stored_here(here, chat_only, server):
    asked = len(chat_only.requests)
    client = sdk(here)
    response = client.responses.create(model=MODEL, input="Say hello.", max_output_tokens=16)
    assert response.id.startswith("resp_") and response.output_text and response.usage.input_tokens > 0
    assert client.responses.retrieve(response.id).model_dump() == response.model_dump()
    assert chat_only.paths()[asked:] == ["/v1/chat/completions"]
    # The upstream made a chat completion, nothing else: the response exists only here.
    with pytest.raises(openai.NotFoundError):
        sdk(server).responses.retrieve(response.id)


def test_a_streamed_response_over_the_upstreams_chat_stream_sends_the_events_in_order(here):
    client = sdk(here)
    events = list(client.responses.create(model=MODEL, input="Name three colors.", max_output_tokens=16, stream=True))
    types = [event.type for event in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert types[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    final = events[-1].response
    assert text and final.output_text == text and final.usage.output_tokens > 0
    assert client.responses.retrieve(final.id).output_text == text


def test_a_two_turn_chain_is_rebuilt_here_and_sent_upstream_as_chat_messages(here, chat_only):
    client = sdk(here)
    first = client.responses.create(model=MODEL, input="My name is Ann.", max_output_tokens=16)
    second = client.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=16
    )
    assert second.previous_response_id == first.id
    path, chat = chat_only.requests[-1]
    assert path == "/v1/chat/completions"
    assert [(message["role"], message["content"]) for message in chat["messages"]] == [
        ("user", "My name is Ann."),
        ("assistant", first.output_text),
        ("user", "What is my name?"),
    ]
    assert [item.content[0].text for item in client.responses.input_items.list(second.id).data] == ["What is my name?"]


def test_an_upstream_refusal_is_answered_with_the_upstreams_error(here, chat_only):
    with pytest.raises(openai.NotFoundError) as refused:
        # Routed to the upstream by the pattern; the upstream has no such model.
        sdk(here).responses.create(model="missing-model", input="Hi", max_output_tokens=16)
    assert (refused.value.body["code"], refused.value.body["param"]) == ("model_not_found", "model")
    assert chat_only.requests[-1][1]["model"] == "missing-model"


def test_the_websocket_mode_serves_the_upstreams_models_too(here):
    with sdk(here).responses.connect() as connection:
        connection.response.create(model=MODEL, input="Say hi.", max_output_tokens=16)
        events = []
        while not events or events[-1].type not in ("response.completed", "response.incomplete", "error"):
            events.append(connection.recv())
    assert events[0].type == "response.created" and events[-1].response.output_text
