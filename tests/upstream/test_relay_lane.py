"""The relay lane: plain requests for upstream models are relayed without the Connexion
pipeline behind it; everything else reaches that pipeline with its body intact.

Driven directly as ASGI middleware in front of a stand-in for the pipeline (it records what
reaches it), with a real upstream (another instance of this service) behind the lane.
"""

from __future__ import annotations

import json

import pytest

from llm_backend import request_headers
from llm_backend.app import _registry, create_app
from llm_backend.auth import Authenticator, Keyring
from llm_backend.backends.events import ModelEvents
from llm_backend.relay_lane import OPERATIONS, RelayLane
from llm_backend.settings import Settings
from llm_backend.spec import adapter
from tests.conftest import MODEL
from tests.upstream.conftest import SERVICE_KEY

CLIENT_KEY = "sk-lane-client-key"
# The lane fixture's aiohttp session lives on the session's event loop: so do the tests.
pytestmark = pytest.mark.asyncio(loop_scope="session")


class Pipeline:
    """Stands in for Connexion's pipeline: answers 299 with the body it received."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def specification(tmp_path_factory):
    settings = Settings(local_models=False, data_dir=tmp_path_factory.mktemp("lane-spec"))
    return create_app(settings).middleware.apis[-1].specification


@pytest.fixture
async def lane(server, specification, tmp_path):
    settings = Settings(
        local_models=False, api_keys=[CLIENT_KEY], data_dir=tmp_path, openai_base_url=server.api, openai_api_key=SERVICE_KEY
    )
    registry = _registry(settings, ModelEvents())
    await registry.start()
    pipeline = Pipeline()
    lane = RelayLane(
        pipeline,
        registry=registry,
        authenticator=Authenticator(Keyring(settings.api_keys)),
        validators=adapter.body_validators(specification, {op for op, _ in OPERATIONS.values()}),
        store_all=False,
    )
    lane.pipeline = pipeline
    yield lane
    await registry.stop()


async def call(lane, body, key: str | None = CLIENT_KEY, path: str = "/v1/chat/completions") -> tuple[int, bytes]:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json")]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
    messages = [{"type": "http.request", "body": raw, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    request_headers.incoming.set(headers)  # as middleware.RequestContext, in front of the lane, does
    await lane(scope, receive, send)
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body_out


CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2}


async def test_a_plain_request_is_relayed_without_the_pipeline(lane):
    status, body = await call(lane, CHAT)
    assert status == 200 and json.loads(body)["object"] == "chat.completion"
    status, body = await call(lane, {"model": MODEL, "input": "hello"}, path="/v1/embeddings")
    assert status == 200 and json.loads(body)["data"][0]["object"] == "embedding"
    assert lane.pipeline.bodies == []


@pytest.mark.parametrize(
    "body, key",
    [
        (CHAT, None),  # no key: the pipeline answers 401
        (CHAT, "sk-wrong"),
        ({**CHAT, "messages": "not a list"}, CLIENT_KEY),  # the schema refuses it: 400 naming it
        ({**CHAT, "store": True}, CLIENT_KEY),  # stored: the controller's work
        ({**CHAT, "metadata": {"a": "b"}}, CLIENT_KEY),
    ],
)
async def test_anything_but_the_plain_case_reaches_the_pipeline_with_its_body(lane, body, key):
    status, _ = await call(lane, body, key=key)
    assert status == 299
    assert [json.loads(b) for b in lane.pipeline.bodies] == [body]


async def test_an_upstream_failure_is_an_openai_error_from_the_lane(lane, server):
    backend = lane.registry.backend_for(MODEL)
    backend.client.base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    backend.client.max_retries = 0
    status, body = await call(lane, CHAT)
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_unreachable"
    assert lane.pipeline.bodies == []
