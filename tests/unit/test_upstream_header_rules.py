"""The rules of what goes to an upstream and what comes back (``backends/upstream/headers.py``)
and the tenant's own prompt cache value (``prompt_cache.py``), on their own; through a real
gateway and upstream: tests/upstream/test_operator_headers.py."""

from __future__ import annotations

import pydantic
import pytest

from llm_backend.backends.base import tenant
from llm_backend.backends.upstream.headers import UpstreamHeaders
from llm_backend.backends.upstream.prompt_cache import TenantCache
from llm_backend.settings import UpstreamConfig

CLIENT = [
    (b"authorization", b"Bearer sk-client"),
    (b"openai-organization", b"org-client"),
    (b"openai-project", b"proj_client"),
    (b"openai-beta", b"assistants=v2"),
    (b"content-type", b"application/json"),
    (b"cookie", b"session=1"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),  # never on: the answer is read (compressed: read as nothing)
]
ANSWER = [
    (b"Content-Type", b"application/json"),
    (b"Content-Encoding", b"gzip"),
    (b"X-Request-Id", b"req_upstream"),
    (b"retry-after", b"3"),
    (b"retry-after-ms", b"2500"),
    (b"openai-organization", b"org-operator"),
    (b"openai-project", b"proj_operator"),
    (b"x-ratelimit-remaining-requests", b"9412"),
    (b"anthropic-ratelimit-tokens-remaining", b"398000"),
    (b"anthropic-organization-id", b"org-uuid"),
    (b"cf-ray", b"8f1d-AMS"),
    (b"set-cookie", b"__cf_bm=x"),
    (b"server", b"cloudflare"),
]


def _rules(pass_client_key: bool = False, **config) -> UpstreamHeaders:
    return UpstreamHeaders(UpstreamConfig(name="up", base_url="http://up/v1", api_key="sk-service", **config), pass_client_key)


def _names(headers) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in headers:
        name = name.decode() if isinstance(name, bytes) else name
        found.setdefault(name, []).append(value.decode() if isinstance(value, bytes) else value)
    return found


def test_the_service_key_goes_without_the_clients_organization_project_cookies_or_encodings():
    sent = _names(_rules().request(CLIENT))
    assert sent == {
        "authorization": ["Bearer sk-service"],
        "openai-beta": ["assistants=v2"],
        "content-type": ["application/json"],
        "accept-encoding": ["identity"],
    }


def test_the_clients_own_key_goes_with_its_organization_and_project():
    sent = _names(_rules(pass_client_key=True).request(CLIENT))
    assert sent["authorization"] == ["Bearer sk-client"]
    assert (sent["openai-organization"], sent["openai-project"]) == (["org-client"], ["proj_client"])


def test_a_configured_header_replaces_every_header_of_its_name_whatever_its_case():
    rules = _rules(pass_client_key=True, headers={"OpenAI-Organization": "org-chosen", "Authorization": "Bearer sk-fixed"})
    sent = _names(rules.request(CLIENT))
    assert sent["openai-organization"] == ["org-chosen"] and sent["authorization"] == ["Bearer sk-fixed"]


def test_an_answer_keeps_only_its_body_retry_and_request_id_headers():
    assert _names(_rules().answer(ANSWER)) == {
        "content-type": ["application/json"],
        "content-encoding": ["gzip"],
        "x-upstream-request-id": ["req_upstream"],
        "retry-after": ["3"],
        "retry-after-ms": ["2500"],
    }


def test_rate_limits_come_back_only_when_the_key_was_the_clients_own():
    relayed = _names(_rules(pass_client_key=True).answer(ANSWER))
    assert relayed["x-ratelimit-remaining-requests"] == ["9412"]
    assert relayed["anthropic-ratelimit-tokens-remaining"] == ["398000"]
    assert "openai-organization" not in relayed and "anthropic-organization-id" not in relayed


def test_anthropics_request_id_comes_back_as_upstream_request_id_and_openais_is_not_taken_for_it():
    relayed = _names(_rules(api="anthropic").answer([(b"request-id", b"req_011"), (b"x-request-id", b"other")]))
    assert relayed == {"upstream-request-id": ["req_011"]}


def _value(cache: TenantCache, who: str, own: object = None) -> str:
    token = tenant.set(who)
    try:
        return cache.request({"model": "m", **({} if own is None else {"prompt_cache_key": own})})["prompt_cache_key"]
    finally:
        tenant.reset(token)


def test_a_tenants_cache_value_is_its_own_stable_and_names_it_not():
    cache = TenantCache("prompt_cache_key", "sk-service")
    acme = _value(cache, "tenant-acme")
    assert acme == _value(cache, "tenant-acme") != _value(cache, "tenant-globex")
    assert len(acme) == 43 and "acme" not in acme


def test_a_clients_own_value_splits_its_tenants_cache_and_never_reaches_anothers():
    cache = TenantCache("prompt_cache_key", None)
    assert _value(cache, "acme", "chat-1") != _value(cache, "acme", "chat-2")
    assert _value(cache, "acme", "chat-1") != _value(cache, "globex", "chat-1") != "chat-1"


def test_the_upstreams_key_keys_the_value():
    assert _value(TenantCache("prompt_cache_key", "sk-one"), "acme") != _value(TenantCache("prompt_cache_key", "sk-two"), "acme")


def test_an_anthropic_upstream_refuses_a_cache_field_it_cannot_add():
    with pytest.raises(pydantic.ValidationError, match="isolate_prompt_cache"):
        UpstreamConfig(name="claude", base_url="http://up/v1", api="anthropic", isolate_prompt_cache="cache_salt")
