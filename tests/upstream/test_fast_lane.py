"""The fast lane: a JSON body of an operation it takes is checked as the body validator
checks it and answered by the controller without the rest of Connexion's pipeline; a
request without a JSON body reaches that pipeline with its body intact.

Driven directly as ASGI middleware, where the app has it: behind ``RequestContext``, after
Connexion's routing (the operation in the scope) and security (here the real
``Authenticator``, as ``http/security.py`` asks it) and inside Connexion's error handlers
(here ``answered`` and ``error_response``, as ``http/problems.py`` renders); in front of a
stand-in for the rest of the pipeline (it records what reaches it), with a real upstream
(another instance of this service) behind the upstream backend. That the key is checked
before a body is read, on every lane, is tested live (tests/hostile/test_auth_first.py).
"""

from __future__ import annotations

import functools
import json

import pytest

from llm_backend.app import create_app
from llm_backend.app.chain import checked_body as _checked_body
from llm_backend.app.model_registry import model_registry as _registry
from llm_backend.auth import Authenticator, Keyring, derived_owner
from llm_backend.backends.events import ModelEvents
from llm_backend.errors import answered
from llm_backend.http import context
from llm_backend.http.body import read_body
from llm_backend.http.context import Services
from llm_backend.http.fast_lane import ROUTING, FastLane
from llm_backend.http.middleware import RequestContext
from llm_backend.http.rendering import error_response
from llm_backend.settings import Settings
from llm_backend.spec import adapter
from llm_backend.storage import Database, default_url
from tests.conftest import MODEL
from tests.support.server import shared_cache_settings
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
    # The parsed document from the run's shared cache (tests/support/document.py): parsing
    # its 3 MB of YAML again took ~1.5 s of CPU.
    settings = Settings(local_models=False, data_dir=tmp_path_factory.mktemp("lane-spec"), **shared_cache_settings())
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
    operations = adapter.json_body_operations(specification).values()
    routes = {operation_id: (controller, functools.partial(_checked_body, schema, operation_id)) for operation_id, controller, schema in operations}
    lane = FastLane(pipeline, routes=routes)
    authenticator = Authenticator(Keyring(settings.api_keys))

    async def connexion(scope, receive, send):
        """Where Connexion has the lane: its routing and security before, its error handlers around."""
        scope["extensions"] = {ROUTING: {"operation_id": specification_routes[(scope["method"], scope["path"])]}}
        try:
            context.authenticated(await authenticator.authenticate(dict(scope["headers"]).get(b"authorization", b"").decode() or None))
            await lane(scope, receive, send)
        except Exception as exc:
            await error_response(answered(exc))(scope, receive, send)

    specification_routes = {route: operation_id for route, (operation_id, _, _) in adapter.json_body_operations(specification).items()}
    app = RequestContext(connexion, services=Services(settings=settings, registry=registry, database=database))
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
    "body, param",
    [
        ({**CHAT, "messages": "not a list"}, "messages"),  # the schema refuses it: 400 naming it
        ({**CHAT, "max_tokens": "two"}, "max_tokens"),
        ([CHAT], None),  # not an object
        ({**CHAT, "foo_unknown": 1}, None),  # a local model's unknown field: OpenAI's words
    ],
)
async def test_a_body_the_check_refuses_gets_the_validators_400_from_the_lane(lane, body, param):
    status, answer = await call(lane, body)
    assert status == 400 and json.loads(answer)["error"]["param"] == param
    assert lane.pipeline.bodies == []


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
    stored = await lane.database.run(lane.database.chat_completions.get, derived_owner(CLIENT_KEY), completion_id)
    assert stored is not None and stored["id"] == completion_id


async def test_an_upstream_failure_is_an_openai_error_from_the_lane(lane, server):
    backend = lane.registry.backend_for(MODEL)
    backend.client.base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    backend.client.max_retries = 0
    status, body = await call(lane, CHAT)
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_unreachable"
    assert lane.pipeline.bodies == []
