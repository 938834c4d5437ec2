"""The Responses WebSocket mode for an upstream's model, through a keyed pure gateway in front
of the real upstream (this service with the model), driven by the official SDK's
``client.responses.connect()`` and the Agents SDK's websocket transport (Codex through a
gateway: tests/e2e/test_agent_clients.py).

Codex with its built-in OpenAI provider pointed at a gateway (``openai_base_url``) speaks only
this socket, and every turn for an upstream's model was refused (400 ``model_not_supported``:
the socket was not proxied). Each ``response.create`` now goes upstream as a streamed
``POST /v1/responses`` (http/responses_upstream.py): the upstream's events come back as
frames, metered; the socket keeps what the mode keeps (its last ``store: false`` response,
continued by sending the upstream its history; a warm-up answered here), and a tenant reaches
only its own upstream responses, as over HTTP."""

from __future__ import annotations

import time

import openai
import pytest
from agents import RunConfig, Runner
from agents.models.openai_provider import OpenAIProvider

from tests.conftest import MODEL
from tests.e2e.test_agents_sdk import Weather, weather_agent
from tests.support.clients import answered, async_sdk, keyed_server, sdk, until_terminal
from tests.support.metrics import scrape
from tests.support.server import LiveServer, access_lines, log_size
from tests.upstream.conftest import SERVICE_KEY

KEY_A, KEY_B, ADMIN = "sk-socket-a-41c9", "sk-socket-b-8e02", "sk-socket-admin-2b7d"
MAX_BODY = 256 * 1024  # a request's bytes here, a frame's too


@pytest.fixture(scope="module")
def gateway(server, tmp_path_factory) -> LiveServer:
    env = {
        "LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": server.api, "OPENAI_API_KEY": SERVICE_KEY,
        "LLM_BACKEND_MAX_BODY_BYTES": str(MAX_BODY),
    }
    with keyed_server(tmp_path_factory.mktemp("socket-gateway"), [KEY_A, KEY_B], [ADMIN], env=env) as live:
        yield live


@pytest.fixture(scope="module")
def alice(gateway) -> openai.OpenAI:
    return sdk(gateway, api_key=KEY_A)


@pytest.fixture(scope="module")
def bob(gateway) -> openai.OpenAI:
    return sdk(gateway, api_key=KEY_B)


def metered(gateway: LiveServer, name: str) -> float:
    return sum(value for (metric, labels), value in scrape(gateway, ADMIN).items()
               if metric == name and ("model", MODEL) in labels)


def test_a_response_of_an_upstream_model_streams_the_upstreams_events_and_is_metered(gateway, server, alice):
    before = metered(gateway, "llm_backend_prompt_tokens_total")
    since, here = log_size(server), log_size(gateway)
    with alice.responses.connect() as connection:
        connection.response.create(model=MODEL, input="Say hello.", max_output_tokens=16)
        events = until_terminal(connection)
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] in ("response.completed", "response.incomplete")
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    final = events[-1].response
    assert text and final.output_text == text and final.model == MODEL
    [asked] = access_lines(server, "/v1/responses", since, expect=1)  # answered there, over HTTP
    assert asked["method"] == "POST" and asked["status"] == 200
    access_lines(gateway, "/v1/responses", here, expect=2)  # the response's line, then the socket's: metered
    assert metered(gateway, "llm_backend_prompt_tokens_total") == before + final.usage.input_tokens
    # Stored upstream (store's default): readable over HTTP by its tenant.
    assert alice.responses.retrieve(final.id).output_text == text


def test_a_store_false_response_is_continued_on_its_socket_with_its_history(alice):
    with alice.responses.connect() as connection:
        connection.response.create(model=MODEL, input="My name is Ann. Say hi.", store=False, max_output_tokens=16)
        first = until_terminal(connection)[-1].response
        connection.response.create(
            model=MODEL, input="What is my name?", previous_response_id=first.id, store=False, max_output_tokens=16
        )
        second = until_terminal(connection)[-1].response
    assert second.status in ("completed", "incomplete") and second.previous_response_id == first.id
    # The upstream read the first turn (its input and its answer) as the new turn's history.
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    # Nothing was stored upstream: another socket, or HTTP, cannot continue it.
    with alice.responses.connect() as other:
        other.response.create(model=MODEL, input="Hi", previous_response_id=second.id, store=False, max_output_tokens=16)
        [elsewhere] = until_terminal(other)
    assert elsewhere.type == "error" and elsewhere.error.code == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        alice.responses.create(model=MODEL, input="Hi", previous_response_id=second.id, max_output_tokens=16)


def upstream_requests(gateway: LiveServer) -> float:
    """What the gateway has sent its upstream (``llm_backend_upstream_requests``)."""
    return sum(value for (metric, _), value in scrape(gateway, ADMIN).items() if metric == "llm_backend_upstream_requests_total")


def test_a_warm_up_is_answered_here_and_the_turn_continuing_it_sends_its_history(gateway, alice):
    instructions = "You are a careful assistant. " * 20
    before = upstream_requests(gateway)
    with alice.responses.connect() as connection:
        connection.response.create(model=MODEL, instructions=instructions, input="My name is Ann.", store=False, generate=False)
        warm = until_terminal(connection)
        asked = upstream_requests(gateway) - before
        connection.response.create(
            model=MODEL, instructions=instructions, input="What is my name?", previous_response_id=warm[-1].response.id,
            store=False, max_output_tokens=16,
        )
        turn = until_terminal(connection)[-1].response
        connection.response.create(model=MODEL, input="Hi", generate=False)  # store's default: true
        [refused] = until_terminal(connection)
        stored = alice.responses.create(model=MODEL, input="Say hi.", max_output_tokens=16)  # kept upstream
        connection.response.create(model=MODEL, input="Hi", previous_response_id=stored.id, store=False, generate=False)
        [continuing] = until_terminal(connection)
    assert [event.type for event in warm] == ["response.created", "response.in_progress", "response.completed"]
    prepared = warm[-1].response
    assert prepared.status == "completed" and prepared.output == [] and prepared.usage.input_tokens == 0
    assert asked == 0  # nothing of the warm-up went upstream
    assert turn.previous_response_id == prepared.id and turn.status in ("completed", "incomplete")
    alone = alice.responses.create(model=MODEL, instructions=instructions, input="What is my name?", store=False, max_output_tokens=16)
    assert turn.usage.input_tokens > alone.usage.input_tokens  # the warm-up's message came too
    assert refused.type == "error" and refused.error.param == "store"
    assert continuing.type == "error" and continuing.error.param == "previous_response_id"


def test_a_remembered_history_goes_upstream_only_within_a_requests_bound(gateway, alice):
    # Each turn adds to what the socket remembers; what goes upstream is held to what one
    # request may be here. A warm-up plants 160 KB without any upstream work.
    before = upstream_requests(gateway)
    with alice.responses.connect() as connection:
        connection.response.create(model=MODEL, input="a " * 80_000, store=False, generate=False)
        warm = until_terminal(connection)[-1].response
        connection.response.create(model=MODEL, input="b " * 60_000, previous_response_id=warm.id, store=False, max_output_tokens=16)
        [refused] = until_terminal(connection)
    assert refused.type == "error" and refused.status == 400 and refused.error.param == "previous_response_id"
    assert upstream_requests(gateway) == before


def test_a_tenant_continues_only_its_own_upstream_responses(alice, bob):
    stored = alice.responses.create(model=MODEL, input="Alice's secret is 4711. Say hi.", max_output_tokens=16)
    with bob.responses.connect() as connection:
        connection.response.create(model=MODEL, input="What was the secret?", previous_response_id=stored.id, max_output_tokens=16)
        [refused] = until_terminal(connection)
    # The guard's answer over HTTP too: another tenant's response does not exist for B.
    with pytest.raises(openai.NotFoundError) as over_http:
        bob.responses.create(model=MODEL, input="What was the secret?", previous_response_id=stored.id, max_output_tokens=16)
    assert refused.type == "error" and refused.status == 404 and refused.error.code == over_http.value.code
    with alice.responses.connect() as connection:
        connection.response.create(model=MODEL, input="What was the secret?", previous_response_id=stored.id, max_output_tokens=16)
        continued = until_terminal(connection)[-1]
    assert continued.type in ("response.completed", "response.incomplete")


def test_the_upstreams_refusal_is_an_error_event_and_the_socket_goes_on(alice):
    with alice.responses.connect() as connection:
        connection.response.create(model="no-such-model", input="Hi", max_output_tokens=16)
        [refused] = until_terminal(connection)
        connection.response.create(model=MODEL, input="Say hi.", max_output_tokens=16)
        after = until_terminal(connection)[-1]
    assert refused.type == "error" and refused.status == 404 and refused.error.code == "model_not_found"
    assert after.type in ("response.completed", "response.incomplete")


def test_a_client_that_leaves_mid_response_stops_the_upstreams(alice):
    # A count to a thousand, greedy: an answer that goes on to its 2,000 tokens (~25 s here).
    long = {"model": MODEL, "input": "Count from 1 to 1000, one number a line.", "temperature": 0, "max_output_tokens": 2000}
    with alice.responses.connect() as connection:
        connection.response.create(**long)
        created = connection.recv()
        while connection.recv().type != "response.output_text.delta":
            pass
    # The upstream's request ends as its client (the gateway) leaves: kept there as
    # ``incomplete``, as any response whose client left, long before its 2,000 tokens.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            left = alice.responses.retrieve(created.response.id)
        except openai.NotFoundError:  # kept once it ends
            left = None
        if left is not None and left.status != "in_progress":
            break
        time.sleep(0.2)
    assert left is not None and left.status == "incomplete", left
    assert left.usage is None or left.usage.output_tokens < 1000


async def test_an_agent_of_the_agents_sdk_runs_its_tool_loop_over_the_socket(gateway, alice):
    # The SDK's websocket transport, its turns chained by ``previous_response_id`` of responses
    # the upstream stores (``store``'s default): each goes as sent, the guard checking it is A's.
    async def run():
        weather = Weather()
        provider = OpenAIProvider(openai_client=async_sdk(gateway, api_key=KEY_A), use_responses_websocket=True)
        try:
            return weather, await Runner.run(
                weather_agent(weather), "What is the weather in Paris?", max_turns=4, run_config=RunConfig(model_provider=provider)
            )
        finally:
            await provider.aclose()

    weather, result = await answered(run)
    assert weather.cities == ["Paris"] and result.final_output
    assert alice.responses.retrieve(result.last_response_id).status == "completed"
