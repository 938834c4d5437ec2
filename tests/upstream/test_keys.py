"""Keys: the service's upstream key by default, the client's own key when configured so;
upstream 401s are relayed; upstream keys never reach clients."""

from __future__ import annotations

import openai
import pytest

from tests.support.server import LiveServer
from tests.upstream.conftest import GUARD_KEY, sdk

MESSAGES = [{"role": "user", "content": "hi"}]
WRONG_KEY = "sk-wrong-upstream-key-0c9e55"


@pytest.fixture(scope="module")
def keyed(guarded, tmp_path_factory):
    """A gateway with two upstreams to the key-protected upstream: one with its right key
    (`good-*`), one with a wrong key (`bad-*`)."""
    config = f"""
local_models: false
upstreams:
  - name: good
    base_url: {guarded.api}
    api_key_env: GOOD_KEY
    models: ["good-*"]
  - name: bad
    base_url: {guarded.api}
    api_key: {WRONG_KEY}
    models: ["bad-*"]
"""
    with LiveServer(tmp_path_factory.mktemp("keyed"), env={"GOOD_KEY": GUARD_KEY}, config=config) as live:
        yield live


def test_service_key_is_used_not_the_clients(keyed):
    # The guarded upstream lets the request in (then has no such model): our key was sent.
    with pytest.raises(openai.NotFoundError) as raised:
        sdk(keyed, api_key="the-client-key").chat.completions.create(model="good-1", messages=MESSAGES)
    assert raised.value.code == "model_not_found"


def test_upstream_401_is_relayed(keyed):
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(keyed).chat.completions.create(model="bad-1", messages=MESSAGES)
    assert raised.value.code == "invalid_api_key"
    assert "x-upstream-request-id" in raised.value.response.headers


def test_upstream_key_is_not_in_the_relayed_error_or_our_log(keyed):
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(keyed).chat.completions.create(model="bad-1", messages=MESSAGES)
    assert WRONG_KEY not in raised.value.response.text
    assert WRONG_KEY not in keyed.log() and GUARD_KEY not in keyed.log()


def test_client_key_is_passed_through_when_configured(guarded, start_server):
    config = f"""
local_models: false
upstream_pass_client_key: true
upstreams:
  - name: guarded
    base_url: {guarded.api}
"""
    gateway = start_server(config=config)
    with pytest.raises(openai.NotFoundError):  # let in with the client's key
        sdk(gateway, api_key=GUARD_KEY).chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):
        sdk(gateway, api_key="not-the-key").chat.completions.create(model="m", messages=MESSAGES)
