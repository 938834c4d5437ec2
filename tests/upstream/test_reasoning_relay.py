"""Reasoning through the gateway. An upstream that reasons (DeepSeek's API, llama.cpp's
server with ``--reasoning-format deepseek``, vLLM with a reasoning parser) answers chat with
``reasoning_content``: the gateway relays it as it came, whole and streamed; and the
Responses API served here over that upstream's chat (``responses: local``) makes it a
``reasoning`` item with its events and ``reasoning_tokens``, and sends the effort and a
reasoning item sent back on to the upstream's chat.

The upstream answers with a recorded answer in the shape DeepSeek's API documents for
``deepseek-reasoner`` (``reasoning_content`` beside ``content``, ``content: null`` in the
chunks while it reasons, ``completion_tokens_details.reasoning_tokens``): no reasoning
model can run here, and the gateway must pass on what such an upstream says."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.clients import TLS, sdk
from tests.support.loopback import LoopbackApp
from tests.support.server import LiveServer

MODEL = "deepseek-reasoner"
THOUGHT = ["Compare 9.11 and 9.8: ", "9.8 is 9.80, ", "and 0.80 > 0.11."]
ANSWER = ["9.8 is ", "greater."]
USAGE = {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42, "completion_tokens_details": {"reasoning_tokens": 21}}
WHOLE = {
    "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e", "object": "chat.completion", "created": 1737521000, "model": MODEL,
    "choices": [{
        "index": 0, "logprobs": None, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "".join(ANSWER), "reasoning_content": "".join(THOUGHT)},
    }],
    "usage": USAGE,
}


def chunk(delta: dict, finish_reason: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    return {"id": WHOLE["id"], "object": "chat.completion.chunk", "created": WHOLE["created"], "model": MODEL, "choices": choices, **({"usage": usage} if usage else {})}


CHUNKS = [
    chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
    *(chunk({"content": None, "reasoning_content": piece}) for piece in THOUGHT),
    *(chunk({"content": piece, "reasoning_content": None}) for piece in ANSWER),
    chunk({"content": "", "reasoning_content": None}, "stop"),
    chunk({}, usage=USAGE),
]


class ReasoningUpstream(LoopbackApp):
    """``POST /v1/chat/completions`` answered with the recorded answer (streamed when asked),
    ``GET /v1/models`` with the model; each chat request's body recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict] = []

    def routes(self, app) -> None:
        from aiohttp import web

        async def chat(request):
            body = await request.json()
            self.requests.append(body)
            if not body.get("stream"):
                return web.json_response(WHOLE)
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            for piece in CHUNKS:
                await response.write(b"data: " + json.dumps(piece).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response

        async def models(request):
            return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "deepseek"}]})

        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/v1/models", models)


@pytest.fixture(scope="module")
def upstream():
    with ReasoningUpstream() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory) -> LiveServer:
    config = f"""
upstreams:
  - name: reasoner
    base_url: {upstream.api}
    models: ["{MODEL}"]
    responses: local
"""
    with LiveServer(tmp_path_factory.mktemp("reasoning-gateway"), env={"LLM_BACKEND_LOCAL_MODELS": "false"}, config=config) as live:
        yield live


def test_an_upstreams_reasoning_content_is_relayed_as_it_came(gateway):
    answer = httpx.post(
        gateway.api + "/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "9.11 or 9.8?"}]},
        headers={"Authorization": "Bearer client-key"}, timeout=60, verify=TLS,
    )
    assert answer.status_code == 200 and answer.json() == WHOLE


def test_an_upstreams_streamed_reasoning_content_is_relayed_as_it_came(gateway):
    with httpx.stream(
        "POST", gateway.api + "/chat/completions", headers={"Authorization": "Bearer client-key"}, timeout=60, verify=TLS,
        json={"model": MODEL, "messages": [{"role": "user", "content": "9.11 or 9.8?"}], "stream": True,
              "stream_options": {"include_usage": True}},  # else its usage chunk is withheld (the meter's)
    ) as answer:
        lines = [line for line in answer.iter_lines() if line.startswith("data: ")]
    assert [json.loads(line[6:]) for line in lines[:-1]] == CHUNKS and lines[-1] == "data: [DONE]"


def test_responses_over_the_upstreams_chat_make_its_reasoning_a_reasoning_item(gateway):
    response = sdk(gateway).responses.create(model=MODEL, input="9.11 or 9.8?", reasoning={"summary": "auto"})
    thought, message = response.output
    assert thought.type == "reasoning" and thought.content[0].text == thought.summary[0].text == "".join(THOUGHT)
    assert message.content[0].text == "".join(ANSWER)
    assert response.usage.output_tokens_details.reasoning_tokens == 21


def test_streamed_responses_over_the_upstreams_chat_stream_its_reasoning_events(gateway, upstream):
    events = list(sdk(gateway).responses.create(model=MODEL, input="9.11 or 9.8?", stream=True, reasoning={"effort": "high"}))
    assert upstream.requests[-1]["reasoning_effort"] == "high"  # the effort is the upstream's to honour
    texts = [event.delta for event in events if event.type == "response.reasoning_text.delta"]
    assert texts == THOUGHT and not any(event.type.startswith("response.reasoning_summary") for event in events)
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"] and final.output_text == "".join(ANSWER)


def test_a_reasoning_item_sent_back_reaches_the_upstream_as_reasoning_content(gateway, upstream):
    sdk(gateway).responses.create(model=MODEL, store=False, input=[
        {"role": "user", "content": "9.11 or 9.8?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "".join(THOUGHT)}]},
        {"role": "assistant", "content": "9.8 is greater."},
        {"role": "user", "content": "Why?"},
    ])
    assert upstream.requests[-1]["messages"][1] == {"role": "assistant", "content": "9.8 is greater.", "reasoning_content": "".join(THOUGHT)}


@pytest.mark.parametrize("stream", [False, True])
def test_the_messages_api_shows_the_upstreams_reasoning_as_a_signed_thinking_block(gateway, stream):
    """Anthropic's extended thinking over the same upstream: the reasoning a ``thinking``
    block before the text (streamed: ``thinking_delta``s, then its ``signature_delta``)."""
    import anthropic

    client = anthropic.Anthropic(base_url=gateway.base_url, api_key="client-key", max_retries=0, timeout=60)
    request = {"model": MODEL, "max_tokens": 64, "thinking": {"type": "adaptive"},
               "messages": [{"role": "user", "content": "9.11 or 9.8?"}]}
    if stream:
        with client.messages.stream(**request) as events:
            kinds = [event.delta.type for event in events if event.type == "content_block_delta"]
            message = events.get_final_message()
        assert kinds == ["thinking_delta"] * len(THOUGHT) + ["signature_delta"] + ["text_delta"] * len(ANSWER)
    else:
        message = client.messages.create(**request)
    thinking, text = message.content
    assert (thinking.type, thinking.thinking, text.type, text.text) == ("thinking", "".join(THOUGHT), "text", "".join(ANSWER))
    assert len(thinking.signature) > 20 and "".join(THOUGHT) not in thinking.signature  # sealed, not the text
