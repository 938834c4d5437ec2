"""The Responses API's ``mcp`` tool for the local model (issue #43): a real MCP server on
loopback (the ``mcp`` package's, ``tests/support/mcp_server.py``: two tools, each call
counted where it runs), a live server allowed to reach it, the OpenAI SDK and the Agents
SDK's ``HostedMCPTool``.

The packaged SmolLM2-135M is not tool-trained: it would not elect to call a tool, so every
call here is forced (``tool_choice`` naming the MCP tool: the engine's grammar makes the
call valid for the tool's ``input_schema``) and decoded greedily; its answer after the call
is its own, from the tool's output (greedy: it repeats the secret word).
"""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import keyed_server, sdk
from tests.support.mcp_server import SECRET, TestMcpServer, listening_socket, mcp  # noqa: F401 (a fixture)
from tests.support.probe import health_probe_apart
from tests.support.response_events import validate_event

ALICE, BOB = "sk-alice-mcp-tests", "sk-bob-mcp-tests"
QUESTION = "What is the secret word about fruit?"
FORCE_SECRET = {"type": "mcp", "server_label": "secrets", "name": "secret_word"}
FORCE_NOTE = {"type": "mcp", "server_label": "secrets", "name": "save_note"}
NOTE = "Save the note 'hello'."  # greedy, SmolLM2 writes {"text": "Hello"}
HIDDEN = "header-value-that-must-stay-hidden"
# How long /health may wait beside a hostile MCP answer: an idle service's probe waits up
# to 0.1-0.3 s now and then on this shared 2-core machine; the answer parsed on the loop
# kept it waiting 1.2-1.6 s.
HEALTH_WAIT = 0.6


@pytest.fixture(scope="module")
def live(mcp, tmp_path_factory):
    allowed = ",".join(mcp.url(path) for path in ("/mcp", "/sse", "/broken", "/redirect", "/hostile"))
    env = {"LLM_BACKEND_MCP_ALLOWED_SERVERS": allowed, "LLM_BACKEND_MCP_TIMEOUT": "30"}
    with keyed_server(tmp_path_factory.mktemp("mcp"), [f"alice={ALICE}", f"bob={BOB}"], env=env) as server:
        yield server


@pytest.fixture(scope="module")
def alice(live) -> openai.OpenAI:
    return sdk(live, api_key=ALICE)


@pytest.fixture(scope="module")
def bob(live) -> openai.OpenAI:
    return sdk(live, api_key=BOB)


def mcp_tool(mcp: TestMcpServer, path: str = "/mcp", **fields) -> dict:
    return {"type": "mcp", "server_label": "secrets", "server_url": mcp.url(path), **fields}


def ask(client: openai.OpenAI, mcp: TestMcpServer, tool: dict | None = None, **kwargs):
    kwargs.setdefault("input", QUESTION)
    kwargs.setdefault("max_output_tokens", 48)
    kwargs.setdefault("tool_choice", FORCE_SECRET)
    return client.responses.create(
        model=MODEL, tools=[tool or mcp_tool(mcp, require_approval="never")], temperature=0, **kwargs
    )


def kinds(response) -> list[str]:
    return [item.type for item in response.output]


@pytest.fixture(scope="module")
def forced(alice, mcp):
    """One forced call, with headers and an authorization that must go to the server only."""
    before = mcp.calls["secret_word"]
    tool = mcp_tool(mcp, require_approval="never", headers={"X-Test-Secret": HIDDEN}, authorization=HIDDEN + "-token")
    response = ask(alice, mcp, tool)
    return response, mcp.calls["secret_word"] - before


def test_the_tools_are_listed_first(forced):
    response, _ = forced
    listing = response.output[0]
    assert listing.type == "mcp_list_tools" and listing.server_label == "secrets" and listing.id.startswith("mcpl_")
    assert sorted(tool.name for tool in listing.tools) == ["save_note", "secret_word"]
    secret = next(tool for tool in listing.tools if tool.name == "secret_word")
    assert secret.input_schema["properties"]["topic"]["type"] == "string" and secret.annotations == {"readOnlyHint": True}


def test_a_forced_call_runs_on_the_server_and_the_answer_uses_its_output(forced):
    response, calls = forced
    assert kinds(response) == ["mcp_list_tools", "mcp_call", "message"]
    call = response.output[1]
    assert (call.server_label, call.name, call.status, call.error) == ("secrets", "secret_word", "completed", None)
    assert isinstance(json.loads(call.arguments)["topic"], str)
    assert call.output == f"The secret word is {SECRET}." and calls == 1
    assert SECRET.split("-")[0] in response.output_text.upper()


def test_headers_and_authorization_reach_the_server_and_are_never_echoed_stored_or_logged(forced, alice, live, mcp):
    response, _ = forced
    assert any(headers.get("x-test-secret") == HIDDEN for headers in mcp.headers)
    assert any(headers.get("authorization") == f"Bearer {HIDDEN}-token" for headers in mcp.headers)
    for shown in (response, alice.responses.retrieve(response.id)):
        assert HIDDEN not in shown.model_dump_json() and shown.tools[0].headers is None
    assert HIDDEN not in live.log()
    for stored in (live.workdir / "data").glob("llm-backend.db*"):  # the database's own bytes, WAL included
        assert HIDDEN.encode() not in stored.read_bytes()


def test_a_streamed_call_sends_openais_events_each_valid_for_the_document(alice, mcp):
    stream = ask(alice, mcp, stream=True, max_output_tokens=48)
    events = [event.model_dump(exclude_unset=True) for event in stream]
    for event in events:
        validate_event(event)
    order = [event["type"] for event in events]
    call = order.index("response.mcp_call.in_progress")
    assert order[:6] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
    ]
    assert order[call - 1] == "response.output_item.added" and order[call + 1] == "response.mcp_call_arguments.delta"
    done = order.index("response.mcp_call_arguments.done")
    assert set(order[call + 1 : done]) == {"response.mcp_call_arguments.delta"}
    assert order[done + 1 : done + 3] == ["response.mcp_call.completed", "response.output_item.done"]
    final = events[-1]["response"]
    assert final["output"][1]["output"] == f"The secret word is {SECRET}."
    deltas = "".join(event["delta"] for event in events if event["type"] == "response.mcp_call_arguments.delta")
    assert deltas == final["output"][1]["arguments"]
    assert alice.responses.retrieve(final["id"]).model_dump(exclude_unset=True)["output"] == final["output"]


def test_a_tool_that_fails_is_a_typed_tool_execution_error(alice, mcp):
    mcp.failing = True
    try:
        stream = ask(alice, mcp, stream=True, max_output_tokens=40)
        events = [event.model_dump(exclude_unset=True) for event in stream]
    finally:
        mcp.failing = False
    assert "response.mcp_call.failed" in [event["type"] for event in events]
    call = events[-1]["response"]["output"][1]
    assert call["status"] == "failed" and call["output"] is None
    assert call["error"]["type"] == "mcp_tool_execution_error" and call["error"]["content"][0]["type"] == "text"


def test_an_answer_of_too_many_values_is_refused_before_it_is_parsed_and_the_loop_goes_on(alice, live, mcp):
    """An answer costs its values, not its bytes: 3.4 MB of 120,000 content parts (within
    mcp_max_bytes) took the mcp package over a second to parse and validate on the event
    loop, every other request of the service waiting (``/health``). Its values are counted
    as its bytes arrive, and refused past ``mcp_max_values`` before anything parses them; a
    parse within the budget happens on the MCP thread, beside the loop."""
    tool = {"type": "mcp", "server_label": "hostile", "server_url": mcp.url("/hostile"), "require_approval": "never"}
    mcp.report_parts = 120_000
    try:
        with health_probe_apart(live.base_url) as probe:
            response = ask(alice, mcp, tool, tool_choice={"type": "mcp", "server_label": "hostile", "name": "report"}, max_output_tokens=40)
    finally:
        mcp.report_parts = 1
    print(f"/health waited at most {probe.longest:.3f} s")
    assert probe.longest < HEALTH_WAIT
    call = response.output[1]
    assert (call.type, call.status, call.error.type) == ("mcp_call", "failed", "mcp_protocol_error"), call
    assert "mcp_max_values" in call.error.message and mcp.calls["report"] >= 1


def test_a_server_answering_http_errors_is_openais_424(alice, mcp):
    with pytest.raises(openai.APIStatusError) as refused:
        ask(alice, mcp, mcp_tool(mcp, "/broken"))
    assert refused.value.status_code == 424
    error = refused.value.body
    assert (error["type"], error["code"], error["param"]) == ("external_connector_error", "http_error", "tools[0]")


def test_an_sse_server_is_listed_and_called(alice, mcp):
    response = ask(alice, mcp, mcp_tool(mcp, "/sse", require_approval="never"), max_output_tokens=40)
    assert kinds(response)[:2] == ["mcp_list_tools", "mcp_call"]
    assert response.output[1].output == f"The secret word is {SECRET}."


def test_allowed_tools_hide_the_other_tool_and_refuse_forcing_it(alice, mcp):
    tool = mcp_tool(mcp, require_approval="never", allowed_tools=["secret_word"])
    response = ask(alice, mcp, tool, tool_choice="none", max_output_tokens=16)
    assert [tool.name for tool in response.output[0].tools] == ["secret_word"]
    with pytest.raises(openai.BadRequestError) as refused:
        ask(alice, mcp, tool, tool_choice=FORCE_NOTE)
    assert refused.value.body["param"] == "tool_choice.name"


def test_the_read_only_filter_keeps_the_read_only_tools(alice, mcp):
    tool = mcp_tool(mcp, require_approval="never", allowed_tools={"read_only": True})
    response = ask(alice, mcp, tool, tool_choice="none", max_output_tokens=16)
    assert [tool.name for tool in response.output[0].tools] == ["secret_word"]


def test_approval_is_required_by_default_and_an_approved_call_runs_once(alice, mcp):
    before = mcp.calls["save_note"]
    asked = ask(alice, mcp, mcp_tool(mcp), tool_choice=FORCE_NOTE, input=NOTE)
    assert kinds(asked) == ["mcp_list_tools", "mcp_approval_request"] and asked.status == "completed"
    request = asked.output[1]
    assert request.name == "save_note" and request.id.startswith("mcpr_") and mcp.calls["save_note"] == before
    approval = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    answered = ask(alice, mcp, mcp_tool(mcp), tool_choice=FORCE_NOTE, input=[approval], previous_response_id=asked.id, max_output_tokens=16)
    call = answered.output[0]
    assert (call.type, call.approval_request_id, call.arguments, call.status) == ("mcp_call", request.id, request.arguments, "completed")
    assert call.output.startswith("Saved note number") and mcp.calls["save_note"] == before + 1
    assert "mcp_list_tools" not in kinds(answered)  # listed in the chain already
    with pytest.raises(openai.BadRequestError) as again:
        ask(alice, mcp, mcp_tool(mcp), input=[approval], previous_response_id=asked.id)
    assert again.value.body["param"] == "input[0].approval_request_id" and mcp.calls["save_note"] == before + 1


def test_a_declined_call_never_runs_and_the_model_answers(alice, mcp):
    before = mcp.calls["save_note"]
    asked = ask(alice, mcp, mcp_tool(mcp), tool_choice=FORCE_NOTE, input=NOTE)
    request = asked.output[1]
    declined = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False}
    answered = ask(alice, mcp, mcp_tool(mcp), input=[declined], previous_response_id=asked.id, tool_choice="auto", max_output_tokens=16)
    assert kinds(answered) == ["message"] and mcp.calls["save_note"] == before


def test_forged_foreign_and_altered_approvals_are_refused_and_nothing_runs(alice, bob, mcp):
    before = mcp.calls["save_note"]
    asked = ask(alice, mcp, mcp_tool(mcp), tool_choice=FORCE_NOTE, input=NOTE)
    request = asked.output[1].model_dump(exclude_none=True)
    approve = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
    forged = {**request, "id": "mcpr_" + "0" * 32}
    altered = {**request, "arguments": json.dumps({"text": "something else"})}
    cases = [
        (alice, [{**approve, "approval_request_id": forged["id"]}], {"previous_response_id": asked.id}),  # not in the chain
        (alice, [forged, {**approve, "approval_request_id": forged["id"]}], {}),  # never issued
        (alice, [altered, approve], {}),  # the call changed
        (bob, [request, approve], {}),  # another tenant's
    ]
    for client, items, extra in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            ask(client, mcp, mcp_tool(mcp), input=items, **extra)
        assert refused.value.body["param"].endswith("approval_request_id"), items
    assert mcp.calls["save_note"] == before
    # The genuine request sent back with the items before it (as the Agents SDK does) runs
    # once, and the listing sent back is reused.
    listing = asked.output[0].model_dump(exclude_none=True)
    answered = ask(alice, mcp, mcp_tool(mcp), input=[listing, request, approve], max_output_tokens=16)
    assert answered.output[0].type == "mcp_call" and mcp.calls["save_note"] == before + 1


def test_an_approval_is_for_the_server_url_it_was_asked_for_not_the_label_pointed_elsewhere(alice, mcp):
    # /sse is another allowed server with the same tools: the label "secrets" moved there.
    before = mcp.calls["save_note"]
    asked = ask(alice, mcp, mcp_tool(mcp), tool_choice=FORCE_NOTE, input=NOTE)
    approve = {"type": "mcp_approval_response", "approval_request_id": asked.output[1].id, "approve": True}
    with pytest.raises(openai.BadRequestError) as refused:
        ask(alice, mcp, mcp_tool(mcp, "/sse"), input=[approve], previous_response_id=asked.id, max_output_tokens=16)
    assert refused.value.body["param"] == "input[0].approval_request_id" and "server_url" in refused.value.body["message"]
    assert mcp.calls["save_note"] == before
    # Refused before it was spent: for the server it was asked about, it runs once.
    answered = ask(alice, mcp, mcp_tool(mcp), input=[approve], previous_response_id=asked.id, max_output_tokens=16)
    assert answered.output[0].type == "mcp_call" and mcp.calls["save_note"] == before + 1


def test_a_second_turn_of_a_conversation_does_not_list_again(alice, mcp):
    conversation = alice.conversations.create()
    first = ask(alice, mcp, conversation=conversation.id, tool_choice="none", max_output_tokens=16)
    assert kinds(first)[0] == "mcp_list_tools"
    hits = sum(mcp.hits.values())
    second = ask(alice, mcp, conversation=conversation.id, input="Thanks.", tool_choice="none", max_output_tokens=16)
    assert kinds(second) == ["message"] and sum(mcp.hits.values()) == hits


# The IPv6 forms around 127.0.0.1 issue #47 saw let through: IPv4-compatible, -translated,
# local-use NAT64, and site-local.
EMBEDDING_LOOPBACK = ["[::127.0.0.1]", "[::ffff:0:127.0.0.1]", "[64:ff9b:1::7f00:1]", "[fec0::7f00:1]"]


@pytest.mark.parametrize("where", ["127.0.0.1", "localhost", *EMBEDDING_LOOPBACK])
def test_a_loopback_server_not_allowed_is_refused_before_any_connection(alice, mcp, where):
    """``localhost`` is a name: refused once resolved, still before connecting."""
    with listening_socket() as (port, connected):
        with pytest.raises(openai.BadRequestError) as refused:
            ask(alice, mcp, {"type": "mcp", "server_label": "x", "server_url": f"http://{where}:{port}/mcp"}, tool_choice="auto")
        assert refused.value.body["param"] == "tools[0].server_url" and not connected()


def test_a_private_address_and_a_redirect_out_of_the_allowed_prefix_are_refused(alice, mcp):
    with pytest.raises(openai.BadRequestError) as private:
        ask(alice, mcp, {"type": "mcp", "server_label": "x", "server_url": "http://10.20.30.40/mcp"}, tool_choice="auto")
    assert private.value.body["param"] == "tools[0].server_url"
    with pytest.raises(openai.BadRequestError) as redirected:
        ask(alice, mcp, mcp_tool(mcp, "/redirect"), tool_choice="auto")
    assert redirected.value.body["param"] == "tools[0].server_url"
    assert mcp.hits["/redirect"] >= 1 and mcp.hits["/elsewhere"] == 0
    with listening_socket() as (port, connected):
        with pytest.raises(openai.BadRequestError) as elsewhere:
            ask(alice, mcp, mcp_tool(mcp, f"/redirect?to=http://127.0.0.1:{port}/mcp"), tool_choice="auto")
        assert elsewhere.value.body["param"] == "tools[0].server_url" and not connected()


def test_a_path_leaving_the_allowed_prefix_by_dot_segments_is_refused_before_any_request(alice, mcp):
    # /mcp is allowed, /elsewhere is not: encoded dots, or dots with parameters, are not a way out.
    hits = sum(mcp.hits.values())
    for path in ("/mcp/%2e%2e/elsewhere", "/mcp/%2E%2E/elsewhere", "/mcp/..;/elsewhere", "/mcp/x%2F..%2F..%2Felsewhere"):
        with pytest.raises(openai.BadRequestError) as refused:
            ask(alice, mcp, mcp_tool(mcp, path), tool_choice="auto")
        assert refused.value.body["param"] == "tools[0].server_url", path
    assert sum(mcp.hits.values()) == hits


@pytest.mark.parametrize("field, value", [("connector_id", "connector_gmail"), ("tunnel_id", "tunnel_" + "a" * 32)])
def test_connectors_and_tunnels_are_refused_naming_them(alice, field, value):
    tool = {"type": "mcp", "server_label": "x", field: value}
    with pytest.raises(openai.BadRequestError) as refused:
        alice.responses.create(model=MODEL, input="hi", tools=[tool])
    assert refused.value.body["param"] == f"tools[0].{field}"


def test_a_background_response_runs_its_call(alice, mcp):
    queued = ask(alice, mcp, background=True, max_output_tokens=40)
    assert queued.status == "queued"
    for _ in range(600):
        done = alice.responses.retrieve(queued.id)
        if done.status not in ("queued", "in_progress"):
            break
        time.sleep(0.1)
    assert done.status in ("completed", "incomplete") and done.output[1].output == f"The secret word is {SECRET}."


def test_the_websocket_mode_runs_the_call(alice, mcp):
    with alice.responses.connect() as connection:
        connection.response.create(
            model=MODEL, input=QUESTION, tools=[mcp_tool(mcp, require_approval="never")], tool_choice=FORCE_SECRET,
            temperature=0, max_output_tokens=48,
        )
        events = []
        for event in connection:
            events.append(event.model_dump(exclude_unset=True))
            if event.type in ("response.completed", "response.incomplete", "response.failed", "error"):
                break
    for event in events:
        validate_event(event)
    assert events[-1]["response"]["output"][1]["output"] == f"The secret word is {SECRET}."


def test_the_agents_sdk_hosted_mcp_tool_gets_the_call_and_an_answer_using_it(live, mcp):
    from agents import Agent, HostedMCPTool, ModelSettings, OpenAIResponsesModel, Runner
    from agents.model_settings import MCPToolChoice

    agent = Agent(
        name="secrets",
        instructions="Answer with the secret word.",
        model=OpenAIResponsesModel(MODEL, openai.AsyncOpenAI(base_url=live.api, api_key=ALICE, max_retries=0)),
        tools=[HostedMCPTool(tool_config=mcp_tool(mcp, require_approval="never"))],
        model_settings=ModelSettings(tool_choice=MCPToolChoice(server_label="secrets", name="secret_word"), temperature=0, max_tokens=48),
    )
    result = Runner.run_sync(agent, QUESTION)
    raw = [item.raw_item for item in result.new_items]
    types = [getattr(item, "type", None) or item.get("type") for item in raw]
    assert "mcp_list_tools" in types and "mcp_call" in types
    call = raw[types.index("mcp_call")]
    assert call.output == f"The secret word is {SECRET}."
    assert SECRET.split("-")[0] in result.final_output.upper()
