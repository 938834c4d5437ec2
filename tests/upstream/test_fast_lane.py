"""The fast lane: a request it can prove valid (route, key, schema) is answered by the
controller without the Connexion pipeline behind it; anything else reaches that pipeline
with its body intact.

Driven directly as ASGI middleware (behind ``RequestContext``, as in the app) in front of a
stand-in for the pipeline (it records what reaches it), with a real upstream (another
instance of this service) behind the upstream backend.
"""

from __future__ import annotations

import json

import pytest

from llm_backend.app import _registry, create_app
from llm_backend.auth import Authenticator, Keyring, derived_owner
from llm_backend.backends.events import ModelEvents
from llm_backend.http.body import read_body
from llm_backend.http.context import Services
from llm_backend.http.fast_lane import FastLane
from llm_backend.http.middleware import RequestContext
from llm_backend.settings import Settings
from llm_backend.spec import adapter, validation
from llm_backend.storage import Database, default_url
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
        body, _ = await read_body(receive)
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
    database = Database(default_url(tmp_path))
    database.upgrade()
    pipeline = Pipeline()
    routes = {
        route: (operation_id, controller, validation.is_valid_body(schema))
        for route, (operation_id, controller, schema) in adapter.json_body_operations(specification).items()
    }
    lane = FastLane(pipeline, routes=routes, authenticator=Authenticator(Keyring(settings.api_keys)))
    app = RequestContext(lane, services=Services(settings=settings, registry=registry, database=database))
    app.pipeline, app.registry, app.database = pipeline, registry, database
    yield app
    await registry.stop()
    database.dispose()


async def call(lane, body, key: str | None = CLIENT_KEY, path: str = "/v1/chat/completions", content_type=b"application/json") -> tuple[int, bytes]:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", content_type)]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
    messages = [{"type": "http.request", "body": raw, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await lane(scope, receive, send)
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body_out


CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2}


async def test_the_lane_takes_exactly_the_served_operations_whose_input_is_a_json_body(specification):
    operation_ids = {operation_id for operation_id, _, _ in adapter.json_body_operations(specification).values()}
    assert {"createChatCompletion", "createCompletion", "createEmbedding"} <= operation_ids
    # Path or query parameters need Connexion's parsing: those operations never take the lane.
    assert not operation_ids & {"updateChatCompletion", "listChatCompletions", "getChatCompletion"}


async def test_a_valid_request_is_answered_without_the_pipeline(lane):
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
        ({**CHAT, "max_tokens": "two"}, CLIENT_KEY),
        ([CHAT], CLIENT_KEY),  # not an object
    ],
)
async def test_anything_but_the_plain_case_reaches_the_pipeline_with_its_body(lane, body, key):
    status, _ = await call(lane, body, key=key)
    assert status == 299
    assert [json.loads(b) for b in lane.pipeline.bodies] == [body]


async def test_an_upstream_models_field_beyond_the_spec_is_relayed_from_the_lane(lane):
    # Local models refuse fields the spec does not define; an upstream's may define them.
    status, body = await call(lane, {**CHAT, "top_k": 1, "max_tokens": 2})
    assert status == 200 and json.loads(body)["object"] == "chat.completion"
    assert lane.pipeline.bodies == []


async def test_a_body_that_is_not_declared_json_reaches_the_pipeline(lane):
    status, _ = await call(lane, CHAT, content_type=b"text/plain")
    assert status == 299 and len(lane.pipeline.bodies) == 1


async def test_the_controllers_own_rules_apply_in_the_lane(lane):
    # The chat controller refuses metadata beyond OpenAI's limits: the lane has no copy of that rule.
    status, body = await call(lane, {**CHAT, "metadata": {"k": "v" * 513}})
    assert status == 400 and json.loads(body)["error"]["param"] == "metadata.k"
    assert lane.pipeline.bodies == []


async def test_a_stored_chat_completion_of_an_upstream_model_is_stored_from_the_lane(lane):
    status, body = await call(lane, {**CHAT, "store": True, "metadata": {"lane": "yes"}})
    assert status == 200 and lane.pipeline.bodies == []
    completion_id = json.loads(body)["id"]
    stored = await lane.database.chat_completions.get(derived_owner(CLIENT_KEY), completion_id)
    assert stored is not None and stored["id"] == completion_id


async def test_an_upstream_failure_is_an_openai_error_from_the_lane(lane, server):
    backend = lane.registry.backend_for(MODEL)
    backend.client.base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    backend.client.max_retries = 0
    status, body = await call(lane, CHAT)
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_unreachable"
    assert lane.pipeline.bodies == []
