"""Bearer keys: enforced when configured, never leaked; no keys means loopback only."""

from __future__ import annotations

import subprocess
import sys

import httpx
import openai
import pytest

from tests.support import clients
from tests.conftest import MODEL

KEY = "sk-test-4c1f0e9d8b7a"
OTHER_KEY = "sk-test-second-key-77"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    with clients.keyed_server(tmp_path_factory.mktemp("keyed"), [KEY, OTHER_KEY]) as live:
        yield live


def sdk(server, key: str) -> openai.OpenAI:
    return clients.sdk(server, api_key=key)


def test_a_configured_key_is_accepted(keyed_server):
    assert MODEL in [m.id for m in sdk(keyed_server, KEY).models.list()]
    assert MODEL in [m.id for m in sdk(keyed_server, OTHER_KEY).models.list()]


def test_a_wrong_key_raises_authentication_error(keyed_server):
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(keyed_server, "sk-wrong").models.list()
    assert raised.value.code == "invalid_api_key"


def test_a_missing_key_is_401_in_openai_shape(keyed_server):
    response = httpx.get(keyed_server.api + "/models", verify=clients.TLS)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert "API key" in error["message"]


def test_a_bare_bearer_is_401_not_a_crash(keyed_server):
    response = httpx.get(keyed_server.api + "/models", headers={"Authorization": "Bearer"}, verify=clients.TLS)
    assert response.status_code == 401


def test_unserved_operations_are_protected_too(keyed_server):
    assert httpx.get(keyed_server.api + "/files", verify=clients.TLS).status_code == 401


def test_probes_need_no_key(keyed_server):
    assert httpx.get(keyed_server.base_url + "/health", verify=clients.TLS).status_code == 200
    assert httpx.get(keyed_server.base_url + "/ready", verify=clients.TLS).status_code == 200


def test_keys_never_appear_in_the_log(keyed_server):
    sdk(keyed_server, KEY).models.list()
    with pytest.raises(openai.AuthenticationError):
        sdk(keyed_server, "sk-presented-but-wrong-123").models.list()
    log = keyed_server.log()
    assert "request" in log  # the access log is there...
    for secret in (KEY, OTHER_KEY, "sk-presented-but-wrong-123"):
        assert secret not in log  # ...and no key in it


def test_no_key_and_a_public_address_refuses_to_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "llm_backend", "serve", "--host", "0.0.0.0", "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "LLM_BACKEND_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0 without API keys" in result.stderr


def test_a_key_list_it_cannot_use_stops_it_naming_the_entry_never_the_key(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "llm_backend", "serve", "--port", "1"],
        env={
            "PATH": "/usr/bin:/bin", "LLM_BACKEND_DATA_DIR": str(tmp_path), "LLM_BACKEND_LOCAL_MODELS": "false",
            "LLM_BACKEND_API_KEYS": "alice=sk-fine-1,two words=sk-secret-zz9",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "LLM_BACKEND_API_KEYS, entry 2: a key's name" in result.stderr
    assert "sk-secret-zz9" not in result.stderr + result.stdout and "two words" not in result.stderr


def test_no_key_accepts_any_or_no_authorization(server):
    assert httpx.get(server.api + "/models", verify=clients.TLS).status_code == 200
    assert httpx.get(server.api + "/models", headers={"Authorization": "Bearer"}, verify=clients.TLS).status_code == 200
    assert httpx.get(server.api + "/models", headers={"Authorization": "Bearer whatever"}, verify=clients.TLS).status_code == 200


@pytest.mark.parametrize("path", ["/v1/openapi.json", "/v1/openapi.yaml", "/openapi.json", "/openapi.yaml", "/v1/ui/", "/ui/"])
def test_connexion_serves_no_document_or_ui_of_its_own(keyed_server, path):
    """Connexion's own spec serving answered anyone, key or not: /v1/openapi.yaml was 70 MB
    built in 52 s on each request, /v1/openapi.json 30 MB in 0.9 s of the event loop. The
    documents are the pages' (/docs, built once); these paths are unknown URLs, like OpenAI's."""
    response = httpx.get(keyed_server.base_url + path, timeout=30, verify=clients.TLS)
    assert response.status_code in (401, 404), (response.status_code, len(response.content))
    assert len(response.content) < 2000 and response.json()["error"]["type"] == "invalid_request_error"


def test_the_docs_still_serve_the_openai_document(keyed_server):
    document = httpx.get(keyed_server.base_url + "/docs/openai.json", timeout=30, verify=clients.TLS)
    assert document.status_code == 200 and "/chat/completions" in document.json()["paths"]
