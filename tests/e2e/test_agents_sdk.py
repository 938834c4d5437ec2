"""The OpenAI Agents SDK (``openai-agents``) running an agent with a function tool against
the live server and the real local model, on the SDK's default path: its OpenAI provider,
which speaks the Responses API (``OpenAIResponsesModel``) through an ``AsyncOpenAI`` client.

The small model calls the tool reliably only when it must: ``tool_choice="required"`` for
the first turn, which the SDK resets to ``auto`` once the tool has run
(``Agent.reset_tool_choice``, true by default), so the second turn can answer."""

from __future__ import annotations

import asyncio
import json

import pytest
from agents import Agent, ModelSettings, RunConfig, RunResult, Runner, function_tool, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider
from openai.types.shared import Reasoning

from tests.conftest import MODEL
from tests.support.clients import answered, async_sdk, sdk

# No trace export: it would go to OpenAI's cloud.
set_tracing_disabled(True)


class Weather:
    """A function tool that records the arguments it was called with."""

    def __init__(self) -> None:
        self.cities: list[str] = []

        @function_tool
        def get_weather(city: str) -> str:
            """The current weather of a city."""
            self.cities.append(city)
            return f"Sunny, 21 degrees in {city}"

        self.tool = get_weather


def weather_agent(weather: Weather, **settings) -> Agent:
    return Agent(
        name="weather",
        # One short sentence asked for: greedy SmolLM2 once ran on to max_tokens (256) after
        # the tool's result, and the SDK raises on an incomplete response.
        instructions="Answer questions about the weather with the get_weather tool, in one short sentence.",
        tools=[weather.tool],
        model=MODEL,
        # Room for the answer after the tool result: at 64 tokens it was cut once in a full
        # run (greedy decoding still varies with what the engine's cache and batch hold), and
        # the SDK treats an incomplete response as a model error.
        model_settings=ModelSettings(
            tool_choice="required", temperature=0, max_tokens=256, parallel_tool_calls=False, **settings
        ),
    )


@pytest.fixture
def run_config(server) -> RunConfig:
    # The SDK's own provider: Responses unless told otherwise (``use_responses=None``).
    return RunConfig(model_provider=OpenAIProvider(openai_client=async_sdk(server)))


@pytest.fixture(scope="module")
def weather_run(server) -> tuple[Weather, RunResult]:
    """One agent run, asserted on by the tests below."""
    run_config = RunConfig(model_provider=OpenAIProvider(openai_client=async_sdk(server)))
    question = "What is the weather in Paris?"

    async def run() -> tuple[Weather, RunResult]:
        weather = Weather()
        return weather, await Runner.run(weather_agent(weather), question, max_turns=4, run_config=run_config)

    return asyncio.run(answered(run))


def test_an_agent_runs_a_function_tool_with_parsed_arguments_and_answers(weather_run):
    weather, result = weather_run
    assert weather.cities == ["Paris"]
    call, answer = result.raw_responses
    [function_call] = call.output
    assert function_call.type == "function_call" and json.loads(function_call.arguments) == {"city": "Paris"}
    assert isinstance(result.final_output, str) and result.final_output
    assert answer.output[-1].type == "message"


def test_an_agent_run_stores_each_of_its_responses(server, weather_run):
    _, result = weather_run
    client = sdk(server)
    for raw in result.raw_responses:
        stored = client.responses.retrieve(raw.response_id)
        assert stored.status == "completed" and stored.model == MODEL
    assert [item.type for item in client.responses.input_items.list(result.last_response_id, order="asc").data] == [
        "message",
        "function_call",
        "function_call_output",
    ]


async def test_a_streamed_agent_run_with_what_agent_clients_send_chains_its_turns(server, run_config):
    async def run():
        weather = Weather()
        agent = weather_agent(
            weather,
            truncation="auto",
            store=True,
            metadata={"agent": "weather"},
            reasoning=Reasoning(effort=None),
            response_include=["message.output_text.logprobs"],
            prompt_cache_retention="in_memory",
            extra_args={"prompt_cache_key": "weather-agent"},
            context_management=[{"type": "compaction", "compact_threshold": 4096}],
        )
        # The SDK sends only the new items, chained by ``previous_response_id``.
        result = Runner.run_streamed(
            agent, "What is the weather in Oslo?", max_turns=4, run_config=run_config, auto_previous_response_id=True
        )
        kinds = [event.type async for event in result.stream_events()]
        return weather, (result, kinds)

    weather, (result, kinds) = await answered(run)
    assert "raw_response_event" in kinds and weather.cities == ["Oslo"]
    assert result.final_output
    client = async_sdk(server)
    first, second = [await client.responses.retrieve(raw.response_id) for raw in result.raw_responses]
    assert second.previous_response_id == first.id and second.metadata == {"agent": "weather"}


async def test_an_agent_runs_over_the_responses_websocket_mode(server):
    async def run():
        weather = Weather()
        # The SDK's websocket transport: one socket, ``response.create`` events.
        provider = OpenAIProvider(openai_client=async_sdk(server), use_responses_websocket=True)
        try:
            return weather, await Runner.run(
                weather_agent(weather), "What is the weather in Paris?", max_turns=4,
                run_config=RunConfig(model_provider=provider),
            )
        finally:
            await provider.aclose()  # its socket, before the test's event loop closes

    weather, result = await answered(run)
    assert weather.cities == ["Paris"] and result.final_output
    stored = await async_sdk(server).responses.retrieve(result.last_response_id)
    assert stored.status == "completed"
