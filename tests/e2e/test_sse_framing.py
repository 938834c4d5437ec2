"""Local streams framed byte for byte as OpenAI frames them: ``\\n`` line ends, the same
``event:``/``data:`` lines, ``data: [DONE]`` last where OpenAI sends it (chat, completions)
and not where it does not (Responses). The framings OpenAI sent are in
tests/fixtures/openai_sse_framing.json (with where they were recorded); before this, every
stream here ended its lines with ``\\r\\n`` and a client splitting on ``"\\n\\n"`` saw no
event. The upstream lanes are in tests/upstream/test_sse_framing.py."""

from __future__ import annotations

from tests.conftest import MODEL
from tests.support.framing import form, lines, naive_events, raw_stream, recorded_form

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Count to 3."}], "max_tokens": 6, "stream": True}
COMPLETION = {"model": MODEL, "prompt": "One, two,", "max_tokens": 6, "stream": True}
RESPONSE = {"model": MODEL, "input": "Count to 3.", "max_output_tokens": 16, "stream": True}


def test_a_chat_stream_is_framed_as_openai_frames_it(server):
    raw = raw_stream(server.api + "/chat/completions", CHAT)
    assert b"\r" not in raw
    assert form(lines(raw)) == recorded_form("chat.completion.chunk")
    chunks = naive_events(raw)
    assert len(chunks) == raw.count(b"data: ") - 1 and chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_completion_stream_is_framed_as_a_chat_stream_is(server):
    raw = raw_stream(server.api + "/completions", COMPLETION)
    assert b"\r" not in raw
    assert form(lines(raw)) == recorded_form("chat.completion.chunk")
    assert "".join(chunk["choices"][0]["text"] for chunk in naive_events(raw))


def test_a_responses_stream_is_framed_as_openai_frames_it(server):
    raw = raw_stream(server.api + "/responses", RESPONSE)
    assert b"\r" not in raw
    assert form(lines(raw)) == recorded_form("response")
    events = naive_events(raw)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] in ("response.completed", "response.incomplete")
