"""The operator decides what goes upstream and what comes back (issue #56 items 3 and 7,
``backends/upstream/headers.py``): a client's ``OpenAI-Organization``/``OpenAI-Project``
never reach an upstream beside the service's key, only beside the client's own; a configured
header replaces the client's of its name; an answer's headers are an allow-list's, the
account's rate limits among them only when the key was the client's; and an upstream set to
``isolate_prompt_cache`` gets each tenant's own cache value, never its name.

The upstream is real (the session's server, the real model) behind ``HeaderHop``, which
records what it is sent and adds to each answer the headers a hosted API sends about its
account and hosting (``tests/support/header_hop.py``: headers only, the answers are the
model's)."""

from __future__ import annotations

import anthropic
import pytest

from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.header_hop import HOSTED, HeaderHop
from tests.support.server import LiveServer, start_together

SERVICE = "sk-operator-upstream-key-5e21"  # the gateway's key for the upstream
ACME, GLOBEX = "tenant-acme=sk-acme-key-0b3f", "tenant-globex=sk-globex-key-9d47"
CHAT = [{"role": "user", "content": "Say hi."}]
# A client's picks of the operator's account, as the SDK sends them (organization=, project=).
PICKED = {"organization": "org-some-other-team", "project": "proj_someone_elses"}
# What no client sees of a hosted API's answer: all of HOSTED but for the SDKs' retry hint.
ACCOUNT = set(HOSTED) - {"x-should-retry"}
CHAT_PATH, MESSAGES_PATH = "/v1/chat/completions", "/v1/messages"


@pytest.fixture(scope="module")
def hop(server):
    with HeaderHop(server.base_url) as running:
        yield running


def _upstream(name: str, hop: HeaderHop, *more: str) -> str:
    return f"  - {{name: {name}, base_url: '{hop.api}', api_key: {SERVICE}, {', '.join(more)}}}\n"


@pytest.fixture(scope="module")
def gateways(hop, tmp_path_factory):
    """(operated, passing): a keyed pure gateway that sends its own key upstream, with an
    Anthropic upstream (``MODEL``) and OpenAI ones by alias; and a keyless one that sends
    each client's own key (``upstream_pass_client_key``)."""
    operated = "local_models: false\nupstreams:\n" + "".join(
        [
            _upstream("claude", hop, "api: anthropic", f"models: [{MODEL}]"),
            _upstream("lab", hop, f"aliases: {{lab-smol: {MODEL}}}"),
            _upstream("chosen", hop, "headers: {OpenAI-Organization: org-operator-chosen}", f"aliases: {{chosen-smol: {MODEL}}}"),
            _upstream("salted", hop, "isolate_prompt_cache: cache_salt", f"aliases: {{salted-smol: {MODEL}}}"),
            _upstream("keyed", hop, "isolate_prompt_cache: prompt_cache_key", f"aliases: {{keyed-smol: {MODEL}}}"),
        ]
    )
    passing = "local_models: false\nupstream_pass_client_key: true\nupstreams:\n" + _upstream("lab", hop, f"models: [{MODEL}]")
    servers = (
        LiveServer(tmp_path_factory.mktemp("operated"), env={"LLM_BACKEND_API_KEYS": f"{ACME},{GLOBEX}"}, config=operated),
        LiveServer(tmp_path_factory.mktemp("passing"), config=passing),
    )
    start_together(*servers)
    yield servers
    for live in servers:
        live.stop()


def _key(entry: str) -> str:
    return entry.partition("=")[2]


def _last(hop: HeaderHop, path: str) -> dict[str, list[str]]:
    return hop.headers_of(path)[-1]


def test_a_clients_organization_and_project_never_reach_the_upstream_beside_the_service_key(gateways, hop):
    operated, _ = gateways
    sdk(operated, _key(ACME), **PICKED).chat.completions.create(model="lab-smol", messages=CHAT, max_tokens=2)
    sent = _last(hop, CHAT_PATH)
    assert "openai-organization" not in sent and "openai-project" not in sent
    assert sent["authorization"] == [f"Bearer {SERVICE}"]


def test_a_forwarded_operation_carries_no_client_organization_or_project(gateways, hop):
    operated, _ = gateways
    sdk(operated, _key(ACME), **PICKED).files.list()  # a pure gateway forwards Files verbatim
    sent = _last(hop, "/v1/files")
    assert "openai-organization" not in sent and "openai-project" not in sent
    assert sent["authorization"] == [f"Bearer {SERVICE}"]


def test_a_configured_header_replaces_the_clients_of_its_name(gateways, hop):
    operated, _ = gateways
    sdk(operated, _key(ACME), **PICKED).chat.completions.create(model="chosen-smol", messages=CHAT, max_tokens=2)
    assert _last(hop, CHAT_PATH)["openai-organization"] == ["org-operator-chosen"]


def test_an_answer_carries_none_of_the_upstream_accounts_headers(gateways, hop):
    operated, _ = gateways
    raw = sdk(operated, _key(ACME)).chat.completions.with_raw_response.create(model="lab-smol", messages=CHAT, max_tokens=2)
    assert raw.parse().choices[0].message.content is not None
    assert ACCOUNT.isdisjoint(raw.headers.keys())
    assert raw.headers["content-type"].startswith("application/json") and raw.headers["x-should-retry"] == "false"
    assert raw.headers["x-upstream-request-id"] != raw.headers["x-request-id"]


def test_a_streamed_answer_carries_none_of_the_upstream_accounts_headers(gateways, hop):
    operated, _ = gateways
    streaming = sdk(operated, _key(ACME)).chat.completions.with_streaming_response
    with streaming.create(model="lab-smol", messages=CHAT, max_tokens=2, stream=True) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        assert ACCOUNT.isdisjoint(raw.headers.keys())
        assert "[DONE]" in raw.text()


def test_an_anthropic_upstreams_organization_and_limits_reach_no_client(gateways, hop):
    operated, _ = gateways
    client = anthropic.Anthropic(base_url=operated.base_url, api_key=_key(ACME), max_retries=0, timeout=120)
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert raw.parse().usage.output_tokens >= 1
    assert ACCOUNT.isdisjoint(raw.headers.keys())
    assert raw.headers["upstream-request-id"] and raw.headers["upstream-request-id"] != raw.headers["request-id"]
    assert _last(hop, MESSAGES_PATH)["x-api-key"] == [SERVICE]


def test_with_the_clients_own_key_its_organization_and_project_go_with_it(gateways, hop):
    _, passing = gateways
    sdk(passing, "sk-the-clients-own-account", **PICKED).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=2)
    sent = _last(hop, CHAT_PATH)
    assert sent["openai-organization"] == [PICKED["organization"]] and sent["openai-project"] == [PICKED["project"]]
    assert sent["authorization"] == ["Bearer sk-the-clients-own-account"]


def test_with_the_clients_own_key_its_own_rate_limits_come_back_and_nothing_else_of_the_account(gateways):
    _, passing = gateways
    raw = sdk(passing, "sk-the-clients-own-account").chat.completions.with_raw_response.create(
        model=MODEL, messages=CHAT, max_tokens=2
    )
    limits = {name for name in HOSTED if name.startswith(("x-ratelimit-", "anthropic-ratelimit-"))}
    assert {name: raw.headers[name] for name in limits} == {name: HOSTED[name] for name in limits}
    assert (ACCOUNT - limits).isdisjoint(raw.headers.keys())


def _sent_values(hop: HeaderHop, field: str, since: int) -> list[str]:
    return [body[field] for body in hop.bodies_of(CHAT_PATH)[since:] if field in body]


def test_each_tenant_has_its_own_cache_salt_the_same_each_time_and_never_its_name(gateways, hop):
    operated, _ = gateways
    since = len(hop.bodies_of(CHAT_PATH))
    for entry in (ACME, ACME, GLOBEX):
        sdk(operated, _key(entry)).chat.completions.create(model="salted-smol", messages=CHAT, max_tokens=2)
    acme, again, globex = _sent_values(hop, "cache_salt", since)
    assert acme == again != globex
    assert len(acme) >= 43 and not any(name in salt for salt in (acme, globex) for name in ("acme", "globex"))


def test_a_clients_own_prompt_cache_key_stays_its_own_within_its_tenant(gateways, hop):
    operated, _ = gateways
    since = len(hop.bodies_of(CHAT_PATH))
    for entry, key in ((ACME, "conversation-1"), (ACME, "conversation-1"), (ACME, "conversation-2"), (GLOBEX, "conversation-1")):
        sdk(operated, _key(entry)).chat.completions.create(model="keyed-smol", messages=CHAT, max_tokens=2, prompt_cache_key=key)
    first, again, second, other_tenants = _sent_values(hop, "prompt_cache_key", since)
    assert first == again and len({first, second, other_tenants}) == 3
    assert "conversation-1" not in (first, other_tenants)


def test_an_upstream_not_set_to_isolate_gets_the_body_as_sent(gateways, hop):
    operated, _ = gateways
    since = len(hop.bodies_of(CHAT_PATH))
    sdk(operated, _key(ACME)).chat.completions.create(model="lab-smol", messages=CHAT, max_tokens=2, prompt_cache_key="mine")
    [body] = hop.bodies_of(CHAT_PATH)[since:]
    assert body["prompt_cache_key"] == "mine" and "cache_salt" not in body
