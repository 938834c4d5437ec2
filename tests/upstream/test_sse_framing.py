"""Streams that come from an upstream framed as OpenAI frames them: relayed (chat,
completions, Responses), relayed with our alias put back in each chunk, and Responses
assembled here from the upstream's chat stream (``responses: local``). One gateway serves
all of them; its upstream is the session's live server. The local lanes, and what the
framing is compared with, are in tests/e2e/test_sse_framing.py."""

from __future__ import annotations

import pytest

from tests.conftest import MODEL
from tests.e2e.test_sse_framing import CHAT, COMPLETION, RESPONSE
from tests.support.framing import form, lines, naive_events, raw_stream, recorded_form
from tests.support.server import LiveServer

HERE = "here-" + MODEL  # served here over the upstream's chat completions


@pytest.fixture(scope="module")
def front(server, tmp_path_factory) -> LiveServer:
    config = f"""
upstreams:
  - name: relayed
    base_url: {server.api}
    models: ["{MODEL}"]
  - name: assembled
    base_url: {server.api}
    aliases: {{"{HERE}": "{MODEL}"}}
    responses: local
"""
    with LiveServer(tmp_path_factory.mktemp("framing"), env={"LLM_BACKEND_LOCAL_MODELS": "false"}, config=config) as live:
        yield live


@pytest.mark.parametrize(
    ("path", "body", "recorded"),
    [
        ("/chat/completions", CHAT, "chat.completion.chunk"),
        ("/completions", COMPLETION, "chat.completion.chunk"),
        ("/responses", RESPONSE, "response"),
    ],
    ids=["chat", "completions", "responses"],
)
def test_a_relayed_stream_is_framed_as_openai_frames_it(front, path, body, recorded):
    raw = raw_stream(front.api + path, body)
    assert b"\r" not in raw
    assert form(lines(raw)) == recorded_form(recorded)
    assert naive_events(raw)


def test_a_relayed_chat_stream_renamed_to_our_alias_keeps_openai_framing(front):
    raw = raw_stream(front.api + "/chat/completions", {**CHAT, "model": HERE})
    assert b"\r" not in raw
    assert form(lines(raw)) == recorded_form("chat.completion.chunk")
    assert {chunk["model"] for chunk in naive_events(raw)} == {HERE}


def test_a_responses_stream_assembled_from_the_upstreams_chat_is_framed_as_openai_frames_it(front):
    raw = raw_stream(front.api + "/responses", {**RESPONSE, "model": HERE})
    assert b"\r" not in raw
    assert form(lines(raw)) == recorded_form("response")
    events = naive_events(raw)
    assert events[-1]["response"]["model"] == HERE and events[-1]["response"]["usage"]["output_tokens"] > 0
