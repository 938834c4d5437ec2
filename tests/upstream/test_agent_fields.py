"""``client_metadata`` (what Codex sends on every turn, accepted beyond the document:
spec/leniency.ACCEPTED) for upstream models: relayed as the client sent it to an upstream
that serves Responses itself (a guard: a forwarded body was relayed unchecked before
too, and stays so); accepted and not passed on where Responses are made here over
an upstream's chat completions (``responses: local``). The upstream is the session's live
server behind ``ChatOnlyUpstream``, which records each request's body."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL
from tests.support.fake_upstreams import ChatOnlyUpstream
from tests.support.server import LiveServer
from tests.upstream.conftest import sdk

METADATA = {"x-codex-installation-id": "abc", "x-codex-turn-state": "t1"}


@pytest.fixture(scope="module")
def chat_only(server):
    with ChatOnlyUpstream(server.api) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateways(chat_only, tmp_path_factory):
    """A gateway forwarding Responses to the upstream, and one serving them here over its chat."""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false"}
    forwarding = f"upstreams:\n  - name: lab\n    base_url: {chat_only.api}\n    models: ['{MODEL}']\n"
    local = forwarding + "    responses: local\n"
    with LiveServer(tmp_path_factory.mktemp("forwarding"), env=env, config=forwarding) as forwards:
        with LiveServer(tmp_path_factory.mktemp("local"), env=env, config=local) as here:
            yield forwards, here


def test_client_metadata_is_relayed_as_sent_to_an_upstream_that_serves_responses(gateways, chat_only):
    forwards, _ = gateways
    with pytest.raises(openai.NotFoundError):  # this upstream answers 404 to /v1/responses, as llama-server
        sdk(forwards).responses.create(model=MODEL, input="Hi", max_output_tokens=16, extra_body={"client_metadata": METADATA})
    [body] = [body for path, body in chat_only.requests if path == "/v1/responses"]
    assert body["client_metadata"] == METADATA


def test_client_metadata_is_accepted_and_kept_here_over_an_upstreams_chat(gateways, chat_only):
    _, here = gateways
    response = sdk(here).responses.create(model=MODEL, input="Hi", max_output_tokens=16, extra_body={"client_metadata": METADATA})
    assert response.status in ("completed", "incomplete")
    [(_, chat)] = [(path, body) for path, body in chat_only.requests if path == "/v1/chat/completions"][-1:]
    assert "client_metadata" not in chat
