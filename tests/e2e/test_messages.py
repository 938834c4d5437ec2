"""Anthropic's Messages API through the official ``anthropic`` SDK (issue #50), against live
servers with keys: one answering with the real local model, and a pure gateway (no local
model) whose model is an OpenAI-compatible upstream (the session's server, the same real
model behind a chat API): the same tests on both. Then the project's limits and usage
counting Messages requests as chat ones."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import jsonschema
import pytest

from tests.conftest import MODEL
from tests.support.admin import same_minute
from tests.support.clients import TLS, admin_sdk, keyed_server
from tests.support.server import start_together
from tests.support.usage import project_completions

KEY = "sk-messages-5d2e"
ADMIN = "sk-admin-messages-8a1"
UPSTREAM_MODEL = "upstream-smol"
WEATHER = {
    "name": "get_weather",
    "description": "The weather of a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


@pytest.fixture(scope="module")
def servers(server, tmp_path_factory):
    """(local, gateway): the local model with keys; a pure gateway to the session's server."""
    config = f"""
upstreams:
  - name: lab
    base_url: {server.api}
    models: [{UPSTREAM_MODEL}]
    aliases: {{{UPSTREAM_MODEL}: {MODEL}}}
upstream_catch_all: false
usage_flush_seconds: 0.5
"""
    started = start_together(
        keyed_server(tmp_path_factory.mktemp("local"), [KEY], [f"ops={ADMIN}"], config=config),
        keyed_server(tmp_path_factory.mktemp("gateway"), [KEY], env={"LLM_BACKEND_LOCAL_MODELS": "false"}, config=config),
    )
    yield started
    for live in started:
        live.stop()


@pytest.fixture(params=["local", "gateway"])
def target(request, servers):
    """(client, model) for the local model, and for the upstream model through the gateway."""
    local, gateway = servers
    live, model = (local, MODEL) if request.param == "local" else (gateway, UPSTREAM_MODEL)
    client = anthropic.Anthropic(base_url=live.base_url, api_key=KEY, max_retries=0, timeout=120)
    return client, model


def test_create_answers_a_message_with_text_usage_and_a_stop_reason(target):
    client, model = target
    message = client.messages.create(
        model=model, max_tokens=12, system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
    )
    assert message.type == "message" and message.role == "assistant" and message.model == model
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"] and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens + message.usage.cache_read_input_tokens > 5
    assert 0 < message.usage.output_tokens <= 12


def test_max_tokens_stops_with_max_tokens(target):
    client, model = target
    message = client.messages.create(model=model, max_tokens=2, messages=[{"role": "user", "content": "Count from one to fifty."}])
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2


def test_a_stream_is_anthropics_event_sequence_and_its_text_is_the_final_messages(target):
    client, model = target
    with client.messages.stream(model=model, max_tokens=16, messages=[{"role": "user", "content": "Tell me about cats."}]) as stream:
        kinds = [event.type for event in stream if event.type not in ("text",)]
        final = stream.get_final_message()
        text = "".join(block.text for block in final.content if block.type == "text")
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert kinds[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert set(kinds) == {"message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
    assert text and final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0 and final.usage.input_tokens + final.usage.cache_read_input_tokens > 5


def test_the_raw_stream_has_a_ping_and_named_events(servers):
    local, _ = servers
    with httpx.stream("POST", local.base_url + "/v1/messages?beta=true", verify=TLS, timeout=120, json={
        "model": MODEL, "max_tokens": 4, "stream": True, "messages": [{"role": "user", "content": "Hi"}],
    }, headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,no-such-beta"}) as answer:
        assert answer.status_code == 200 and answer.headers["request-id"] == answer.headers["x-request-id"]
        lines = [line for line in answer.iter_lines() if line.startswith("event:")]
    assert lines[:2] == ["event: message_start", "event: ping"] and lines[-1] == "event: message_stop"


def test_a_forced_tool_use_validates_and_its_result_goes_back(target):
    client, model = target
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    # One call asked for (a forced tool lets the model make several), and room for its longest
    # city (40 characters, several tokens each if sampled odd): sampled freely, an answer ran
    # past 60 tokens on CI (the gateway's lane). A call ends as soon as its JSON closes.
    choice = {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    message = client.messages.create(model=model, max_tokens=200, tools=[WEATHER], tool_choice=choice, messages=asked)
    calls = [block for block in message.content if block.type == "tool_use"]
    assert message.stop_reason == "tool_use" and len(calls) == 1 and calls[0].name == "get_weather"
    jsonschema.validate(calls[0].input, WEATHER["input_schema"])
    assert calls[0].id
    answered = client.messages.create(model=model, max_tokens=20, tools=[WEATHER], messages=[
        *asked,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "Sunny, 21 C"},
                                     {"type": "text", "text": "So, what is it like?"}]},
    ])
    assert answered.stop_reason in ("end_turn", "max_tokens", "tool_use") and answered.content


def test_a_streamed_tool_use_arrives_as_input_json_deltas(target):
    client, model = target
    choice = {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    with client.messages.stream(model=model, max_tokens=100, tools=[WEATHER], tool_choice=choice,
                                messages=[{"role": "user", "content": "Weather in Rome?"}]) as stream:
        deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "input_json_delta" in deltas and final.stop_reason == "tool_use"
    [call] = [block for block in final.content if block.type == "tool_use"]
    jsonschema.validate(call.input, WEATHER["input_schema"])


def test_count_tokens_equals_the_input_tokens_create_reads(target):
    client, model = target
    request = {"model": model, "system": "Answer in French.", "tools": [WEATHER],
               "messages": [{"role": "user", "content": f"Count me {time.time_ns()}."}]}
    counted = client.messages.count_tokens(**request)
    message = client.messages.create(max_tokens=1, **request)
    usage = message.usage
    assert counted.input_tokens == usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens


def test_an_unknown_model_is_not_found_in_anthropics_shape(target):
    client, _ = target
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="no-such-model", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    body = raised.value.body
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error" and "no-such-model" in body["error"]["message"]
    assert raised.value.response.headers["request-id"]


def test_a_wrong_key_is_an_authentication_error_in_anthropics_shape(servers):
    for live in servers:
        client = anthropic.Anthropic(base_url=live.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as raised:
            client.messages.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
        assert raised.value.status_code == 401
        assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "authentication_error"
        assert raised.value.response.headers["request-id"]
        # The same key as a Bearer token (Claude Code's ANTHROPIC_AUTH_TOKEN) is the same key.
        bearer = anthropic.Anthropic(base_url=live.base_url, auth_token=KEY, max_retries=0)
        model = MODEL if live is servers[0] else UPSTREAM_MODEL
        assert bearer.messages.create(model=model, max_tokens=2, messages=[{"role": "user", "content": "Hi"}]).content is not None


def test_a_bad_body_is_an_invalid_request_error_and_images_are_refused_as_chat_refuses_them(servers):
    local, _ = servers
    client = anthropic.Anthropic(base_url=local.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "Hi"}], extra_body={"frobnicate": 1})
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": [image]}])
    assert raised.value.body["error"]["type"] == "invalid_request_error" and "image" in raised.value.body["error"]["message"]


def test_claude_codes_request_shape_is_answered(servers):
    """What Claude Code sends (the issue's capture): system blocks with cache_control, a
    system turn inside messages, adaptive thinking with an effort, context management,
    betas, a deferred tool, metadata.user_id; a model without reasoning answers it."""
    local, _ = servers
    body = {
        "model": MODEL, "max_tokens": 64, "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Say hi.", "cache_control": {"type": "ephemeral"}}]}],
        "tools": [WEATHER, {**WEATHER, "name": "later_tool", "defer_loading": True}],
        "thinking": {"type": "adaptive", "display": "summarized"}, "output_config": {"effort": "medium"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "user_abc_account_x_session_y"},
    }
    headers = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01", "x-app": "cli",
               "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"}
    with httpx.stream("POST", local.base_url + "/v1/messages?beta=true", json=body, headers=headers, verify=TLS, timeout=120) as answer:
        lines = list(answer.iter_lines())
    assert answer.status_code == 200, lines
    events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    assert events[-1]["type"] == "message_stop", events[-3:]
    # Thinking asked for outright is refused on a model that does not reason, naming it.
    enabled = {**body, "stream": False, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    enabled.pop("output_config")
    refused = httpx.post(local.base_url + "/v1/messages", json=enabled, headers=headers, verify=TLS, timeout=120)
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    assert "'thinking'" in refused.json()["error"]["message"]


def test_a_max_tokens_past_the_room_left_is_answered_as_chat_answers_it(servers):
    """Claude Code's max_tokens: 32000, past the model's window: the Messages request is
    answered as chat answers the same cap (fitted to the room left, docs/MODELS.md), not
    refused. Stopped at the first sentence's end, so that neither answer runs to the window."""
    local, _ = servers
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    messages = [{"role": "user", "content": "Hi"}]
    stops = [".", "!", "?", "\n"]
    message = httpx.post(local.base_url + "/v1/messages", headers=headers, verify=TLS, timeout=120, json={
        "model": MODEL, "max_tokens": 32000, "messages": messages, "stop_sequences": stops, "temperature": 0})
    chat = httpx.post(local.api + "/chat/completions", headers={"authorization": f"Bearer {KEY}"}, verify=TLS, timeout=120, json={
        "model": MODEL, "max_completion_tokens": 32000, "messages": messages, "stop": stops, "temperature": 0})
    assert message.status_code == chat.status_code == 200, (message.text[:300], chat.text[:300])
    assert message.json()["content"][0]["text"] == chat.json()["choices"][0]["message"]["content"]


def test_models_are_listed_in_anthropics_shape_when_asked(servers):
    local, _ = servers
    anthropic_list = anthropic.Anthropic(base_url=local.base_url, api_key=KEY, max_retries=0).models.list()
    assert MODEL in [model.id for model in anthropic_list.data] and anthropic_list.data[0].type == "model"
    openai_list = httpx.get(local.api + "/models", headers={"authorization": f"Bearer {KEY}"}, verify=TLS).json()
    assert openai_list["object"] == "list" and openai_list["data"][0]["object"] == "model"


def test_a_projects_limits_and_usage_count_messages_requests_as_chat_ones(servers):
    local, _ = servers
    org = admin_sdk(local, ADMIN).admin.organization
    project = org.projects.create(name="messages")
    key = org.projects.service_accounts.create(project.id, name="bot").api_key.value
    org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project.id, max_requests_per_1_minute=2)
    time.sleep(2.2)  # the control plane's settings are read again every 2 s
    client = anthropic.Anthropic(base_url=local.base_url, api_key=key, max_retries=0)
    same_minute()  # the project's windows are clock minutes: the three requests count in one
    message = client.messages.create(model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Hi"}])
    chat = httpx.post(local.api + "/chat/completions", json={"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]},
                      headers={"authorization": f"Bearer {key}"}, verify=TLS, timeout=120)
    assert chat.status_code == 200
    with pytest.raises(anthropic.RateLimitError) as raised:  # the third request of the minute, of either API
        client.messages.create(model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.body["error"]["type"] == "rate_limit_error" and "requests per min" in raised.value.body["error"]["message"]
    expected = message.usage.output_tokens + chat.json()["usage"]["completion_tokens"]
    results = project_completions(org, project.id, lambda results: results and sum(r.output_tokens for r in results) >= expected)
    assert sum(r.num_model_requests for r in results) == 2 and sum(r.output_tokens for r in results) == expected


def test_the_edges_refusals_are_anthropic_shaped(server, servers):
    """Refusals made before any Messages code runs: a foreign Host at a keyless service (the
    edge), a body past max_body_bytes (the body limit), in Anthropic's shape with a request-id."""
    local, _ = servers
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    foreign = httpx.post(server.base_url + "/v1/messages", json={"model": MODEL, "max_tokens": 1, "messages": []},
                         headers={**headers, "host": "evil.example"}, verify=TLS, timeout=30)
    assert foreign.status_code == 403 and foreign.json()["type"] == "error"
    assert foreign.json()["error"]["type"] == "permission_error" and foreign.headers["request-id"]
    large = b'{"model": "x", "max_tokens": 1, "messages": [], "pad": "' + b"a" * (9 << 20) + b'"}'
    refused = httpx.post(local.base_url + "/v1/messages", content=large, headers={**headers, "content-type": "application/json"},
                         verify=TLS, timeout=30)
    assert refused.status_code == 413 and refused.json()["error"]["type"] == "request_too_large"
