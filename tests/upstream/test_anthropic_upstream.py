"""An Anthropic upstream (``api: anthropic``, issue #50 item 3): a Messages request for one
of its models is passed through unchanged and its usage still metered. The upstream is
real: another live server of this service with keys of its own, serving ``/v1/messages``
itself on the real local model; the gateway in front of it is a pure gateway (no local
model) that knows the upstream's key, never its clients'. Through the gateway with the
``anthropic`` SDK, each answer is compared with the upstream's own to the same request."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.support.admin import same_minute
from tests.support.clients import TLS, admin_sdk, keyed_server, sdk
from tests.support.server import log_records, start_together
from tests.support.usage import project_completions

UPSTREAM_KEY = "sk-anthropic-upstream-3c9e"  # the upstream's own key: the gateway's config holds it
KEY = "sk-anthropic-gateway-71d0"  # the gateway's client key: the upstream would refuse it
ADMIN = "sk-admin-anthropic-up-4b2"
MISCONFIGURED = "misconfigured-smol"  # routed to the same upstream with a key it does not know
HOPPED = "hopped-smol"  # routed to it through a hop that keeps what it is sent (no such model there)
HOP: "Hop"
BROKEN = "broken-smol"  # routed to a fault: a stream that stops midway
VERSION = {"anthropic-version": "2023-06-01"}
WEATHER = {
    "name": "get_weather",
    "description": "The weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"]},
}


class Hop:
    """A loopback hop between the gateway and the real upstream that keeps what it is sent
    (path, headers, the body's bytes) and passes it on, the upstream's answer back."""

    def __init__(self, target: str) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        hop = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                hop.seen.append((self.path, headers, body))
                sent = {name: value for name, value in headers.items() if name not in ("host", "content-length")}
                answer = httpx.post(target + self.path, content=body, headers=sent, timeout=120)
                self.send_response(answer.status_code)
                self.send_header("content-type", answer.headers["content-type"])
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


class BrokenStream:
    """A fault (not a model): an Anthropic API whose stream stops after its first event, the
    connection closed before the chunked body's end."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                event = b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":3}}}\n\n'
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                self.close_connection = True  # no last chunk: the body broke off

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(upstream, gateway): the real model behind its own key; a pure gateway to it."""
    upstream = keyed_server(tmp_path_factory.mktemp("anthropic-upstream"), [UPSTREAM_KEY])
    upstream.start()
    global HOP
    HOP, broken = Hop(upstream.base_url), BrokenStream()
    config = f"""
upstreams:
  - name: claude
    api: anthropic
    base_url: {upstream.api}
    api_key: {UPSTREAM_KEY}
    models: [{MODEL}]
  - name: misconfigured
    api: anthropic
    base_url: {upstream.api}
    api_key: sk-not-the-upstreams-key
    models: [{MISCONFIGURED}]
  - name: hop
    api: anthropic
    base_url: {HOP.url}/v1
    api_key: {UPSTREAM_KEY}
    models: [{HOPPED}]
  - name: broken
    api: anthropic
    base_url: {broken.url}/v1
    api_key: {UPSTREAM_KEY}
    models: [{BROKEN}]
usage_flush_seconds: 0.5
prices:
  - {{model: {MODEL}, input: 3, cached_input: 1, output: 7}}
"""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false"}
    try:
        [gateway] = start_together(keyed_server(tmp_path_factory.mktemp("anthropic-gateway"), [KEY], [f"ops={ADMIN}"], env=env, config=config))
        yield upstream, gateway
        gateway.stop()
    finally:
        upstream.stop()
        HOP.server.shutdown()
        broken.server.shutdown()


def clients(servers) -> tuple[anthropic.Anthropic, anthropic.Anthropic]:
    """(through the gateway, straight to the upstream)."""
    upstream, gateway = servers
    return (anthropic.Anthropic(base_url=gateway.base_url, api_key=KEY, max_retries=0, timeout=120),
            anthropic.Anthropic(base_url=upstream.base_url, api_key=UPSTREAM_KEY, max_retries=0, timeout=120))


def test_create_answers_the_upstreams_message(servers):
    through, direct = clients(servers)
    request = {"model": MODEL, "max_tokens": 8, "extra_body": {"temperature": 0}, "messages": [{"role": "user", "content": "Name a colour."}]}
    message, expected = through.messages.create(**request), direct.messages.create(**request)
    assert message.model == MODEL and message.id.startswith("msg_") and message.id != expected.id
    assert [block.model_dump() for block in message.content] == [block.model_dump() for block in expected.content]
    assert message.stop_reason == expected.stop_reason and message.usage.output_tokens == expected.usage.output_tokens


def _events(live, key: str, body: dict) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    with httpx.stream("POST", live.base_url + "/v1/messages", json=body, headers={"x-api-key": key, **VERSION},
                      verify=TLS, timeout=120) as answer:
        lines = list(answer.iter_lines())
    names = [line[6:].strip() for line in lines if line.startswith("event:")]
    data = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    return answer, list(zip(names, data))


def test_a_stream_is_the_upstreams_event_sequence(servers):
    upstream, gateway = servers
    body = {"model": MODEL, "max_tokens": 10, "temperature": 0, "stream": True, "messages": [{"role": "user", "content": "Tell me about owls."}]}
    answer, events = _events(gateway, KEY, body)
    _, expected = _events(upstream, UPSTREAM_KEY, body)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    assert [name for name, _ in events] == [name for name, _ in expected]
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert deltas == [data["delta"] for name, data in expected if name == "content_block_delta"]
    # Ours is the request id; the upstream's is beside it.
    assert answer.headers["request-id"] == answer.headers["x-request-id"] and answer.headers["upstream-request-id"]


def test_the_sdks_stream_ends_in_the_final_message(servers):
    through, _ = clients(servers)
    with through.messages.stream(model=MODEL, max_tokens=12, messages=[{"role": "user", "content": "Tell me about cats."}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "".join(block.text for block in final.content if block.type == "text") and final.usage.output_tokens > 0


def test_count_tokens_is_the_upstreams_count(servers):
    through, direct = clients(servers)
    request = {"model": MODEL, "system": "Answer in French.", "tools": [WEATHER], "messages": [{"role": "user", "content": "Count me."}]}
    assert through.messages.count_tokens(**request).input_tokens == direct.messages.count_tokens(**request).input_tokens > 10


def test_a_tool_use_round_trip_passes_through(servers):
    through, _ = clients(servers)
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    message = through.messages.create(model=MODEL, max_tokens=60, tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}, messages=asked)
    [call] = [block for block in message.content if block.type == "tool_use"]
    assert message.stop_reason == "tool_use" and call.name == "get_weather" and isinstance(call.input.get("city"), str)
    answered = through.messages.create(model=MODEL, max_tokens=16, tools=[WEATHER], messages=[
        *asked,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]},
    ])
    assert answered.content and answered.stop_reason in ("end_turn", "max_tokens", "tool_use")


def test_the_upstream_gets_its_own_key_and_the_clients_version_betas_and_query(servers):
    upstream, gateway = servers
    beta = f"gateway-test-{time.time_ns()}"
    headers = {"x-api-key": KEY, **VERSION, "anthropic-beta": f"claude-code-20250219,{beta}"}
    answer = httpx.post(gateway.base_url + "/v1/messages?beta=true", headers=headers, verify=TLS, timeout=120,
                        json={"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]})
    assert answer.status_code == 200, answer.text
    # The client's key is not the upstream's: had it been passed on, the upstream would have refused it.
    refused = httpx.post(upstream.base_url + "/v1/messages", headers=headers, verify=TLS, timeout=120,
                         json={"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]})
    assert refused.status_code == 401
    deadline = time.monotonic() + 10
    while True:
        seen = [record for record in log_records(upstream) if beta in (record.get("anthropic_beta") or [])]
        if seen or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert seen and seen[0]["anthropic_beta"] == ["claude-code-20250219", beta]
    assert seen[0]["beta"] == "true" and seen[0]["anthropic_version"] == "2023-06-01"


def test_the_body_goes_upstream_as_the_client_sent_it_with_the_upstreams_key(servers):
    """The bytes as sent (odd spacing, an escaped character, a field order no encoder would
    choose), the query, the version and betas; the upstream's key, never the client's. The
    model is no model of the upstream's: its 404 comes back in its shape, with its status."""
    _, gateway = servers
    body = b'{ "messages" : [{"content":"Caf\\u00e9?","role":"user"}],\n  "max_tokens":2, "model":"%s" }' % HOPPED.encode()
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json", **VERSION, "anthropic-beta": "one-beta,two-beta"}
    answer = httpx.post(gateway.base_url + "/v1/messages?beta=true", content=body, headers=headers, verify=TLS, timeout=120)
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "not_found_error", answer.text
    path, seen, sent = HOP.seen[-1]
    assert path == "/v1/messages?beta=true" and sent == body
    assert seen["x-api-key"] == UPSTREAM_KEY and "authorization" not in seen
    assert seen["anthropic-version"] == "2023-06-01" and seen["anthropic-beta"] == "one-beta,two-beta"
    counted = httpx.post(gateway.base_url + "/v1/messages/count_tokens", content=body.replace(b'"max_tokens":2, ', b""),
                         headers=headers, verify=TLS, timeout=120)
    assert counted.status_code == 404 and HOP.seen[-1][0] == "/v1/messages/count_tokens"


def test_a_stream_the_upstream_breaks_off_ends_in_anthropics_error_event(servers):
    _, gateway = servers
    body = {"model": BROKEN, "max_tokens": 4, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    answer, events = _events(gateway, KEY, body)
    assert answer.status_code == 200 and [name for name, _ in events] == ["message_start", "error"]
    assert events[-1][1]["type"] == "error" and events[-1][1]["error"]["type"] == "api_error"


def test_an_upstream_that_refuses_the_key_is_its_401_in_anthropics_shape(servers):
    _, gateway = servers
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.create(model=MISCONFIGURED, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.status_code == 401
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "authentication_error"


def test_an_upstreams_400_is_relayed_with_its_status(servers):
    """A field the upstream refuses (it serves Messages itself: unknown fields are refused
    there) passes the gateway, which relays what the upstream knows, and comes back as the
    upstream's 400."""
    through, _ = clients(servers)
    with pytest.raises(anthropic.BadRequestError) as raised:
        through.messages.create(model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}], extra_body={"frobnicate": 1})
    assert raised.value.body["error"]["type"] == "invalid_request_error" and "frobnicate" in raised.value.body["error"]["message"]


def test_openai_operations_naming_its_model_are_refused_naming_model(servers):
    _, gateway = servers
    client = sdk(gateway, KEY)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.body["param"] == "model" and "Messages API" in raised.value.body["message"]
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, input="Hi")
    assert raised.value.body["param"] == "model"


def test_its_models_are_listed_owned_by_the_upstream(servers):
    _, gateway = servers
    listed = {model.id: model for model in sdk(gateway, KEY).models.list().data}
    assert listed[MODEL].owned_by == "claude"
    through, _ = clients(servers)
    assert MODEL in [model.id for model in through.models.list().data]


def test_a_projects_limits_usage_and_costs_count_the_upstreams_tokens(servers):
    """Two requests (one whole, one streamed) under a per-minute limit of two and a hard
    spend limit (each holds its most, then settles): the third is refused; the usage is
    the tokens the upstream reported, cache reads in the prompt; the costs are its price."""
    _, gateway = servers
    org = admin_sdk(gateway, ADMIN).admin.organization
    project = org.projects.create(name="anthropic-upstream")
    key = org.projects.service_accounts.create(project.id, name="bot").api_key.value
    org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project.id, max_requests_per_1_minute=2)
    org.projects.spend_limit.update(project.id, threshold_amount=10_000, currency="USD", interval="month")
    time.sleep(2.2)  # the control plane's settings are read again every 2 s
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=120)
    # Three requests in one clock minute (the window's), two of them answered by the model
    # upstream: seconds each on loaded cores, and a third that fell in the next minute was
    # let in (a full run here).
    same_minute(needs=30)
    whole = client.messages.create(model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Hi"}])
    with client.messages.stream(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "Hello there"}]) as stream:
        streamed = stream.get_final_message()
    with pytest.raises(anthropic.RateLimitError) as raised:  # the third request of the minute
        client.messages.create(model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "rate_limit_error"

    def prompt(usage) -> int:
        return usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)

    expected = (prompt(whole.usage) + prompt(streamed.usage), whole.usage.output_tokens + streamed.usage.output_tokens,
                (whole.usage.cache_read_input_tokens or 0) + (streamed.usage.cache_read_input_tokens or 0))

    def counted(results: list) -> tuple:
        return (sum(r.input_tokens for r in results), sum(r.output_tokens for r in results),
                sum(r.input_cached_tokens or 0 for r in results), sum(r.num_model_requests for r in results))

    assert counted(project_completions(org, project.id, lambda results: counted(results) == (*expected, 2))) == (*expected, 2)
    today = int(time.time()) // 86400 * 86400
    prompt_tokens, output_tokens, cached = expected
    micros = (prompt_tokens - cached) * 3 + cached * 1 + output_tokens * 7  # a token's price in micro-dollars
    for _ in range(50):
        page = org.usage.costs(start_time=today, group_by=["project_id"], project_ids=[project.id], limit=1)
        costs = sum(round(Decimal(str(r.amount.value)) * 1_000_000) for bucket in page.data for r in bucket.results)
        if costs == micros:
            break
        time.sleep(0.2)
    assert costs == micros > 0
