"""One parse (issue #56, item 4): a body whose object holds a key twice is refused, 400 naming
the key, before anything is admitted, priced, stored or sent upstream - on the lanes that
relay a body's bytes as they came: an ``api: anthropic`` model's Messages (its passthrough)
and an operation forwarded unread (an image generation, read only by the tenant guard and the
image count as it streams). Python's parse keeps the last of the two values; the upstream's
parser may keep the first: ``{"model": "claude-big", "max_tokens": 64000, ..., "max_tokens":
1}`` was admitted and priced as the small request and relayed with both.

A pure gateway in front of ``ChatOnlyUpstream``, which records every request it is sent and
passes Messages on to the session's real server (the real model); image generations it
answers itself, as OpenAI does (this service does not serve them)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS, keyed_server
from tests.support.fake_upstreams import ChatOnlyUpstream

KEY = "sk-duplicate-keys-6b0e"
ANTHROPIC = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
OPENAI = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
MESSAGES = b'"messages": [{"role": "user", "content": "Say hi."}]'


@pytest.fixture(scope="module")
def upstream(server):
    with ChatOnlyUpstream(server.api, also=("/v1/messages",), images=True) as answering:
        yield answering


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    config = f"""
upstreams:
  - name: claude
    api: anthropic
    base_url: {upstream.api}
    api_key: sk-upstream-anthropic-2a7c
    models: [{MODEL}]
"""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": upstream.api, "OPENAI_API_KEY": "sk-upstream-openai-9d3f"}
    with keyed_server(tmp_path_factory.mktemp("duplicate-keys"), [KEY], env=env, config=config) as live:
        yield live


def post(live, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(live.base_url + path, content=content, headers=headers, timeout=120, verify=TLS)


def test_a_messages_body_with_a_key_twice_is_refused_before_the_upstream(gateway, upstream):
    body = b'{"model": "%s", "max_tokens": 64000, %s, "model": "%s", "max_tokens": 1}' % (MODEL.encode(), MESSAGES, MODEL.encode())
    sent = len(upstream.paths())
    refused = post(gateway, "/v1/messages", body, ANTHROPIC)
    assert refused.status_code == 400
    error = refused.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "'model'" in error["error"]["message"]
    assert upstream.paths()[sent:] == []
    answered = post(gateway, "/v1/messages", b'{"model": "%s", "max_tokens": 1, %s}' % (MODEL.encode(), MESSAGES), ANTHROPIC)
    assert answered.status_code == 200 and upstream.paths()[sent:] == ["/v1/messages"]


def test_a_message_batch_with_a_key_twice_in_a_request_is_refused_and_stores_nothing(gateway):
    params = b'{"model": "%s", "max_tokens": 64000, %s, "max_tokens": 1}' % (MODEL.encode(), MESSAGES)
    body = b'{"requests": [{"custom_id": "a", "params": %s}]}' % params
    refused = post(gateway, "/v1/messages/batches", body, ANTHROPIC)
    assert refused.status_code == 400 and "'requests[0].params.max_tokens'" in refused.json()["error"]["message"]
    listed = httpx.get(gateway.base_url + "/v1/messages/batches", headers=ANTHROPIC, timeout=30, verify=TLS)
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_a_forwarded_image_request_with_a_key_twice_is_refused_before_the_upstream(gateway, upstream):
    # The guard and the image count read it as it streams: n once 1, once 10.
    body = b'{"model": "gpt-image-1", "prompt": "a red square", "n": 1, "size": "1024x1024", "n": 10}'
    sent = len(upstream.paths())
    refused = post(gateway, "/v1/images/generations", body, OPENAI)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "duplicate_key" and refused.json()["error"]["param"] == "n"
    assert upstream.paths()[sent:] == []
    answered = post(gateway, "/v1/images/generations", body.replace(b', "n": 10', b""), OPENAI)
    assert answered.status_code == 200 and upstream.paths()[sent:] == ["/v1/images/generations"]


def test_a_chat_request_with_a_key_twice_names_it_in_openais_shape(gateway, upstream):
    body = b'{"model": "gpt-4o-mini", "store": true, %s, "metadata": {"a": "1", "a": "2"}}' % MESSAGES
    sent = len(upstream.paths())
    refused = post(gateway, "/v1/chat/completions", body, OPENAI)
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "message": refused.json()["error"]["message"], "type": "invalid_request_error", "param": "metadata.a", "code": "duplicate_key",
    }
    assert upstream.paths()[sent:] == []
