"""A thinking block's signature binds it to its tenant, and a block sent back is checked
(issue #56 item 7): Anthropic answers 400 for a thinking block whose signature does not
verify; the service signed its thinking with its key alone and never checked one sent back.

The thinking comes from a reasoning upstream over the gateway's Messages lane (the upstream
answers the recorded reasoning of ``test_reasoning_relay.py``: no reasoning model runs
here). Two projects' keys: a block verifies for every key of the project it was written
for, and is still left out of the context; another project's, an altered or forged one, and
a ``redacted_thinking`` block (this service redacts none) are Anthropic's 400. A model of an
Anthropic upstream is passed through: its thinking blocks, Anthropic's signatures, reach it
as sent."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.support.clients import TLS
from tests.support.loopback import LoopbackApp
from tests.support.server import LiveServer
from tests.upstream.test_reasoning_relay import ANSWER, MODEL, THOUGHT, ReasoningUpstream

A1, A2, B = "sk-think-a1-5e0c", "sk-think-a2-77d1", "sk-think-b-3a4f"
CLAUDE = "claude-up"
QUESTION = {"role": "user", "content": "9.11 or 9.8?"}
# A block as Anthropic's API gives one (its signature is Anthropic's, opaque here).
ANTHROPICS = {"type": "thinking", "thinking": "Compare them.", "signature": "EqQBCkYIBxgCKkBp0tI2xVwhc7rN5Q8sDQ=="}


class AnthropicUpstream(LoopbackApp):
    """``POST /v1/messages`` answered with one short Message; each request's bytes kept."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def routes(self, app) -> None:
        from aiohttp import web

        async def messages(request):
            self.bodies.append(await request.read())
            return web.json_response({
                "id": "msg_up", "type": "message", "role": "assistant", "model": CLAUDE, "content": [{"type": "text", "text": "9.8"}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 2},
            })

        app.router.add_post("/v1/messages", messages)


@pytest.fixture(scope="module")
def upstreams():
    with ReasoningUpstream() as reasoner, AnthropicUpstream() as claude:
        yield reasoner, claude


@pytest.fixture(scope="module")
def gateway(upstreams, tmp_path_factory) -> LiveServer:
    reasoner, claude = upstreams
    config = f"""
upstreams:
  - {{name: reasoner, base_url: '{reasoner.api}', models: ['{MODEL}']}}
  - {{name: claude, api: anthropic, base_url: '{claude.api}', models: ['{CLAUDE}']}}
"""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "LLM_BACKEND_API_KEYS": f"proj-a={A1},proj-a={A2},proj-b={B}"}
    with LiveServer(tmp_path_factory.mktemp("thinking-signatures"), env=env, config=config) as live:
        yield live


def client(live: LiveServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.base_url, api_key=key, max_retries=0, timeout=60)


def thinking_of(live: LiveServer, key: str, stream: bool = False) -> dict:
    """The thinking block of a Message the reasoning upstream's model answers ``key``."""
    request = {"model": MODEL, "max_tokens": 64, "thinking": {"type": "adaptive"}, "messages": [QUESTION]}
    if stream:
        with client(live, key).messages.stream(**request) as events:
            message = events.get_final_message()
    else:
        message = client(live, key).messages.create(**request)
    return message.content[0].model_dump(exclude_none=True)


def sent_back(live: LiveServer, key: str, block: dict, model: str = MODEL) -> httpx.Response:
    """The next turn, the earlier answer's thinking block and text sent back."""
    body = {"model": model, "max_tokens": 64, "messages": [
        QUESTION, {"role": "assistant", "content": [block, {"type": "text", "text": "".join(ANSWER)}]},
        {"role": "user", "content": "Why?"},
    ]}
    return httpx.post(live.base_url + "/v1/messages", json=body, verify=TLS, timeout=60,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"})


def assert_invalid_signature(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json() == {"type": "error", "error": {
        "type": "invalid_request_error", "message": "messages.1.content.0: Invalid `signature` in `thinking` block"}}


@pytest.mark.parametrize("stream", [False, True])
def test_a_block_sent_back_by_its_project_verifies_and_stays_out_of_the_context(gateway, upstreams, stream):
    block = thinking_of(gateway, A1, stream)
    assert block["type"] == "thinking" and block["thinking"] == "".join(THOUGHT)
    answer = sent_back(gateway, A2, block)  # another key of the same project
    assert answer.status_code == 200, answer.text[:300]
    reasoner, _ = upstreams
    context = json.dumps(reasoner.requests[-1]["messages"])
    assert "Why?" in context and "".join(THOUGHT) not in context and block["signature"] not in context


def test_another_projects_block_is_refused_in_anthropics_shape(gateway):
    assert_invalid_signature(sent_back(gateway, B, thinking_of(gateway, A1)))


def test_a_block_whose_thinking_was_altered_is_refused(gateway):
    block = thinking_of(gateway, A1)
    assert_invalid_signature(sent_back(gateway, A1, {**block, "thinking": block["thinking"] + " So 9.11."}))


def test_a_forged_signature_is_refused(gateway):
    assert_invalid_signature(sent_back(gateway, A1, {"type": "thinking", "thinking": "".join(THOUGHT), "signature": "forged"}))


def test_a_redacted_thinking_block_is_refused_none_being_this_services(gateway):
    answer = sent_back(gateway, A1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "messages.1.content.0: Invalid `data` in `redacted_thinking` block"


def test_an_anthropic_upstreams_thinking_blocks_pass_through_as_sent(gateway, upstreams):
    answer = sent_back(gateway, A1, ANTHROPICS, model=CLAUDE)
    assert answer.status_code == 200, answer.text[:300]
    _, claude = upstreams
    sent = json.loads(claude.bodies[-1])
    assert sent["messages"][1]["content"][0] == ANTHROPICS
