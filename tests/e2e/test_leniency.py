"""What OpenAI's API accepts beyond its document (spec/leniency.py, docs/CONFORMANCE.md),
accepted by every lane with OpenAI's defaults, and nothing more: requests the real API
refuses are still refused. Lanes: the fast lane (``POST /v1/responses``, ``/compact``),
Connexion (conversation items: a path parameter keeps them off the fast lane), the
WebSocket mode's ``response.create``."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
# Assistant history as the Vercel AI SDK and the Open Responses suite send it: no type, id,
# status, annotations or logprobs.
HISTORY = [
    {"role": "user", "content": [{"type": "input_text", "text": "My name is Alice."}]},
    {"role": "assistant", "content": [{"type": "output_text", "text": "Hello Alice!"}]},
    {"type": "message", "role": "user", "content": "What is my name?"},
]


def _post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.api + path, json=body, timeout=120, verify=TLS)


def test_a_function_tool_without_strict_is_accepted_and_echoed_strict_as_openai_defaults_it(server):
    answer = _post(server, "/responses", {"model": MODEL, "input": "Weather in Paris?", "tools": [TOOL], "max_output_tokens": 16})
    assert answer.status_code == 200, answer.text
    assert answer.json()["tools"] == [{**TOOL, "strict": True}]


def test_assistant_history_without_its_optional_in_practice_fields_is_accepted_and_stored_complete(server):
    answer = _post(server, "/responses", {"model": MODEL, "input": HISTORY, "max_output_tokens": 16})
    assert answer.status_code == 200, answer.text
    items = httpx.get(f"{server.api}/responses/{answer.json()['id']}/input_items?order=asc", timeout=30, verify=TLS).json()["data"]
    assistant = items[1]
    assert assistant["type"] == "message" and assistant["status"] == "completed" and assistant["id"].startswith("msg_")
    assert assistant["content"] == [{"type": "output_text", "text": "Hello Alice!", "annotations": [], "logprobs": []}]


def test_compaction_accepts_the_same_history(server):
    answer = _post(server, "/responses/compact", {"model": MODEL, "input": HISTORY})
    assert answer.status_code == 200, answer.text
    assert answer.json()["object"] == "response.compaction"


def test_connexions_lane_accepts_it_with_the_defaults_set(server):
    conversation = _post(server, "/conversations", {}).json()
    answer = _post(server, f"/conversations/{conversation['id']}/items", {"items": HISTORY[1:2]})
    assert answer.status_code == 200, answer.text
    [item] = answer.json()["data"]
    assert item["status"] == "completed" and item["content"][0]["annotations"] == [] and item["content"][0]["logprobs"] == []


@pytest.mark.parametrize("request_id", ["mcpr_1", {}, None])
def test_an_approval_responses_undefined_request_id_may_be_any_value_as_the_document_leaves_it(server, request_id):
    """The document requires `request_id` of an `mcp_approval_response` and never defines it,
    so any value is valid there: schemathesis sent `{}` and got a 400 while it was taken as
    a string."""
    item = {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": False, "request_id": request_id}
    answer = _post(server, "/conversations", {"items": [item]})
    assert answer.status_code == 200, answer.text
    # The stored item has it too (the document's resource requires it), as sent.
    [stored] = httpx.get(f"{server.api}/conversations/{answer.json()['id']}/items", timeout=30, verify=TLS).json()["data"]
    assert "request_id" in stored and stored["request_id"] == request_id


def test_the_websocket_mode_accepts_it(server):
    import openai

    client = openai.OpenAI(base_url=server.api, api_key="anything", http_client=openai.DefaultHttpxClient(verify=TLS))
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input=HISTORY, tools=[TOOL], max_output_tokens=16)
        events = []
        for event in connection:
            events.append(event)
            if event.type in ("response.completed", "response.incomplete", "error"):
                break
    assert events[-1].type != "error", events[-1]
    assert events[-1].response.tools[0].strict is True


def test_an_image_for_a_text_only_model_is_refused_naming_the_part(server):
    body = {
        "model": MODEL,
        "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},  # no detail: OpenAI's auto
        ]}],
    }
    answer = _post(server, "/responses", body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "input[0].content[1]" and "input_image" in error["message"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"tools": [{**TOOL, "strict": "yes"}]}, "tools[0]"),  # the wrong type: refused as OpenAI does
        ({"tools": [{key: value for key, value in TOOL.items() if key != "name"}]}, "tools[0]"),  # name is required
        ({"tools": [{**TOOL, "strictly": True}]}, "tools[0].strictly"),  # an unknown field (local model)
        ({"input": [{"role": "assistant", "content": [{"type": "output_text", "text": "x", "annotations": "none"}]}]}, "input"),
        ({"input": [{"role": "assistant", "content": [{"type": "output_text"}]}]}, "input"),  # text is required
    ],
    ids=["strict-wrong-type", "tool-without-name", "unknown-tool-field", "annotations-wrong-type", "output-text-without-text"],
)
def test_requests_the_real_api_refuses_are_still_refused(server, change, param):
    answer = _post(server, "/responses", {"model": MODEL, "input": "hi", "max_output_tokens": 16, **change})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"].startswith(param)
