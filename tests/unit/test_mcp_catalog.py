"""The Responses layer's view of MCP tools (serving/mcp/servers.py, calls.py),
which Realtime sessions share (serving/realtime/mcp_tools.py): function names that cannot
collide, tool choices that force a server's tool, approval filters, what the model reads of
earlier calls, what is never echoed, and refusals naming where the tool was given."""

from __future__ import annotations

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.mcp.connector import Server
from llm_backend.serving.mcp.calls import DECLINED, replayable
from llm_backend.serving.mcp.servers import Catalog, McpServer, redacted, servers
from llm_backend.serving.realtime.mcp_tools import realtime_error


def server(label: str, *names: str, index: int = 0, **fields) -> McpServer:
    found = McpServer(index, label, f"https://{label}.example/mcp", Server(f"https://{label}.example/mcp"), **fields)
    found.tools = [{"name": name, "input_schema": {"type": "object"}, "annotations": {"readOnlyHint": name.startswith("get")}} for name in names]
    return found


def test_the_same_tool_name_on_two_servers_and_a_clients_function_are_three_functions():
    one, two = server("docs", "search"), server("wiki", "search", index=1)
    catalog = Catalog([one, two], functions=["docs__search"])
    names = {catalog.function("docs", "search"), catalog.function("wiki", "search")}
    assert len(names) == 2 and "docs__search" not in names and "wiki__search" in names
    assert {catalog.tools[name][0].label for name in names} == {"docs", "wiki"}


def test_function_names_are_what_chat_apis_accept():
    long = server("a label with spaces/and:colons", "t" * 80)
    name = Catalog([long], functions=[]).function(long.label, "t" * 80)
    assert len(name) <= 64 and all(char.isalnum() or char in "_-" for char in name)


def test_an_mcp_tool_choice_forces_the_tools_function_or_any_of_the_servers():
    docs = server("docs", "search", "fetch")
    catalog = Catalog([docs], functions=[])
    body = {"tools": [{"type": "mcp", "server_label": "docs"}], "tool_choice": {"type": "mcp", "server_label": "docs", "name": "fetch"}}
    chat = catalog.chat_body(body)
    assert [tool["name"] for tool in chat["tools"]] == ["docs__search", "docs__fetch"]
    assert chat["tool_choice"] == {"type": "function", "name": "docs__fetch"}
    anyone = catalog.chat_body({**body, "tool_choice": {"type": "mcp", "server_label": "docs"}})["tool_choice"]
    assert anyone["mode"] == "required" and [tool["name"] for tool in anyone["tools"]] == ["docs__search", "docs__fetch"]


@pytest.mark.parametrize(
    "choice, param",
    [({"type": "mcp", "server_label": "nope", "name": "search"}, "tool_choice.server_label"), ({"type": "mcp", "server_label": "docs", "name": "hidden"}, "tool_choice.name")],
)
def test_a_tool_choice_naming_a_server_or_tool_not_offered_is_refused(choice, param):
    catalog = Catalog([server("docs", "search")], functions=[])
    with pytest.raises(OpenAIError) as refused:
        catalog.chat_body({"tools": [{"type": "mcp", "server_label": "docs"}], "tool_choice": choice})
    assert refused.value.param == param


def test_approval_filters():
    assert server("s", "get_x").needs_approval("get_x")  # the default: always
    assert not server("s", "get_x", approval="never").needs_approval("get_x")
    filtered = server("s", "get_x", "delete_x", approval={"never": {"read_only": True}})
    assert not filtered.needs_approval("get_x") and filtered.needs_approval("delete_x")
    both = server("s", "get_x", approval={"never": {"read_only": True}, "always": {"tool_names": ["get_x"]}})
    assert both.needs_approval("get_x")  # always wins


def test_the_model_reads_a_call_as_a_function_call_and_a_declined_request_as_declined():
    catalog = Catalog([server("docs", "search")], functions=[])
    items = [
        {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "docs", "tools": []},
        {"type": "mcp_call", "id": "mcp_1", "server_label": "docs", "name": "search", "arguments": "{}", "output": "found"},
        {"type": "mcp_approval_request", "id": "mcpr_1", "server_label": "docs", "name": "search", "arguments": "{\"q\": 1}"},
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": False},
    ]
    replayed = replayable(items, catalog)
    assert [(item["type"], item.get("name"), item.get("output")) for item in replayed] == [
        ("function_call", "docs__search", None),
        ("function_call_output", None, "found"),
        ("function_call", "docs__search", None),
        ("function_call_output", None, DECLINED),
    ]
    assert replayed[2]["arguments"] == "{\"q\": 1}"


def test_headers_and_authorization_are_never_echoed():
    tool = {"type": "mcp", "server_label": "s", "server_url": "https://s.example", "headers": {"X": "secret"}, "authorization": "t"}
    assert redacted([tool, {"type": "function", "name": "f"}]) == [
        {"type": "mcp", "server_label": "s", "server_url": "https://s.example", "headers": None},
        {"type": "function", "name": "f"},
    ]


def test_a_realtime_sessions_mcp_tools_are_refused_naming_where_they_are():
    tools = [{"type": "function", "name": "f"}, {"type": "mcp", "server_label": "x", "connector_id": "connector_gmail"}]
    with pytest.raises(OpenAIError) as refused:
        servers({"tools": tools}, None, "session.")
    assert refused.value.param == "session.tools[1].connector_id"
    catalog = Catalog([server("docs", "search")], functions=[])
    with pytest.raises(OpenAIError) as forced:
        catalog.chat_body({"tools": [{"type": "mcp", "server_label": "docs"}], "tool_choice": {"type": "mcp", "server_label": "docs", "name": "x"}}, "response.")
    assert forced.value.param == "response.tool_choice.name"


def test_a_calls_error_is_typed_as_the_realtime_document_types_it():
    assert realtime_error({"type": "mcp_protocol_error", "code": -32603, "message": "bad"}) == {"type": "protocol_error", "code": -32603, "message": "bad"}
    failed = {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": "the store is closed"}]}
    assert realtime_error(failed) == {"type": "tool_execution_error", "message": "the store is closed"}
    assert realtime_error({"type": "http_error", "code": 502, "message": "x"})["type"] == "http_error"


def test_a_failed_calls_content_that_is_not_text_is_read_as_json():
    # An item's error content is any JSON (the client's, in a request's input): a part
    # whose ``text`` is no string was joined as text (a TypeError, a 500).
    content = [{"type": "text", "text": 5}]
    call = {"type": "mcp_call", "id": "mcp_1", "server_label": "docs", "name": "search", "arguments": "{}",
            "error": {"type": "mcp_tool_execution_error", "content": content}}
    replayed = replayable([call], Catalog([server("docs", "search")], functions=[]))
    assert replayed[1]["output"] == 'The tool failed: [{"type": "text", "text": 5}]'
