"""The stateful families (Responses, Conversations, Files, Vector stores) with upstreams: served here for
local models, forwarded for upstream ones, and entirely forwarded by a pure gateway. The
upstream is real: the session's live server (this service with the real model)."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.server import access_lines, log_size
from tests.upstream.conftest import LOCAL

def test_a_response_for_a_local_model_is_served_and_stored_here(mixed, server):
    before = log_size(server)
    response = sdk(mixed).responses.create(model=LOCAL, input="Say hi.", max_output_tokens=16)
    assert response.model == LOCAL and response.status in ("completed", "incomplete")
    assert sdk(mixed).responses.retrieve(response.id).id == response.id
    assert access_lines(server, "/v1/responses", since=before) == []


def test_a_response_for_an_upstream_model_is_the_upstreams_and_is_found_through_us(mixed, server):
    before = log_size(server)
    response = sdk(mixed).responses.create(model=MODEL, input="Say hi.", max_output_tokens=16)
    [line] = access_lines(server, "/v1/responses", since=before, expect=1)
    assert line["method"] == "POST"
    # Stored upstream, not here: retrieving it through us reaches the upstream's copy.
    assert sdk(server).responses.retrieve(response.id).id == response.id
    assert sdk(mixed).responses.retrieve(response.id).output_text == response.output_text
    assert access_lines(server, f"/v1/responses/{response.id}", since=before, expect=2)


def test_an_mcp_tool_for_an_upstream_model_goes_upstream_as_sent(mixed, server):
    """The gateway neither runs nor checks it: the upstream (here this service with its
    defaults: public MCP servers only) is the one that judges the loopback server URL."""
    before = log_size(server)
    tool = {"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "k"}}
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(mixed).responses.create(model=MODEL, input="hi", tools=[tool], max_output_tokens=16)
    assert refused.value.body["param"] == "tools[0].server_url"
    assert access_lines(server, "/v1/responses", since=before, expect=1)


def test_an_id_found_nowhere_is_the_upstreams_404(mixed):
    with pytest.raises(openai.NotFoundError) as raised:
        sdk(mixed).responses.retrieve("resp_nobody")
    assert raised.value.code == "not_found"


def test_a_pure_gateway_forwards_conversations(gateway, server):
    before = log_size(server)
    conversation = sdk(gateway).conversations.create(metadata={"via": "gateway"})
    [line] = access_lines(server, "/v1/conversations", since=before, expect=1)
    assert line["method"] == "POST"
    assert sdk(server).conversations.retrieve(conversation.id).metadata == {"via": "gateway"}


def test_a_pure_gateway_forwards_file_uploads_as_sent(gateway, server):
    before = log_size(server)
    uploaded = sdk(gateway).files.create(file=("notes.txt", b"forwarded bytes"), purpose="assistants")
    assert access_lines(server, "/v1/files", since=before, expect=1)
    assert sdk(server).files.content(uploaded.id).read() == b"forwarded bytes"


def test_a_pure_gateway_forwards_vector_stores(gateway, server):
    before = log_size(server)
    store = sdk(gateway).vector_stores.create(name="via gateway")
    assert access_lines(server, "/v1/vector_stores", since=before, expect=1)
    assert sdk(server).vector_stores.retrieve(store.id).name == "via gateway"
    assert sdk(gateway).vector_stores.search(store.id, query="anything").data == []
