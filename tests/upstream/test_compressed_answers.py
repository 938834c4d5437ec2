"""An upstream's answer is read by the gateway that relays it - metered, renamed, stored,
guarded - so it is never a compressed one (``backends/upstream/headers.py``,
``http_client.py``).

Found 2026-11-29 with Codex 0.171, which began to send ``Accept-Encoding: zstd,gzip``: the
gateway passed a client's ``Accept-Encoding`` on to the upstream for chat completions,
completions and embeddings. The OpenAI SDKs send ``gzip, deflate`` by default; an upstream
that honours it answers gzip, and the meter read the compressed answer as nothing: a chat
completion of 1,000 prompt tokens counted none against any rate limit, spend limit or usage
report, and a stream's events went by unframed. Now every upstream is asked for an
uncompressed answer, and one that comes compressed anyway is refused (502
``upstream_unreadable``), as an answer the tenant guard cannot read always was.

The upstream here is a loopback server: this service never compresses its answers, so a real
upstream of it cannot show either fault (one honouring ``Accept-Encoding`` as OpenAI's API
does, one compressing unasked)."""

from __future__ import annotations

import gzip
import json
from http.server import BaseHTTPRequestHandler

import httpx
import openai
import pytest

from tests.support.fake_upstreams import ThreadedUpstream
from tests.support.metrics import scrape
from tests.support.server import LiveServer

PROMPT_TOKENS = 1000
USAGE = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 3, "total_tokens": PROMPT_TOKENS + 3}
UNASKED = "gpt-gzip-always"  # the upstream compresses its answers for this model whatever it is asked
EMPTY = "gpt-empty-coding"  # its answers say ``Content-Encoding:`` with no coding named
# What the OpenAI SDKs' HTTP clients accept, and more (Codex 0.171 sends "zstd,gzip").
ACCEPTING = "gzip, deflate, br, zstd"


def _chunk(model: str, delta: dict, usage: dict | None = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": None}]
    chunk = {"id": "chatcmpl-z", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": choices}
    return "data: " + json.dumps({**chunk, **({"usage": usage} if usage else {})}) + "\n\n"


class CompressingUpstream(ThreadedUpstream):
    """Chat completions (whole or streamed, with their usage) and embeddings, gzip-encoded
    when the request accepts gzip, as OpenAI's API does, and always for model ``UNASKED``;
    records each request's ``Accept-Encoding``."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                accepted = self.headers.get("accept-encoding", "")
                fake.asked.append(accepted)
                model = request["model"]
                kind = "application/json"
                if self.path.endswith("/embeddings"):
                    body = {"object": "list", "model": model, "usage": USAGE | {"completion_tokens": 0, "total_tokens": PROMPT_TOKENS},
                            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]}
                    data = json.dumps(body).encode()
                elif request.get("stream"):
                    kind = "text/event-stream"
                    events = [_chunk(model, {"role": "assistant", "content": "Hi"}), _chunk(model, {"content": " there"}), _chunk(model, {}, USAGE)]
                    data = ("".join(events) + "data: [DONE]\n\n").encode()
                else:
                    message = {"role": "assistant", "content": "Hi there"}
                    data = json.dumps({"id": "chatcmpl-z", "object": "chat.completion", "created": 1, "model": model, "usage": USAGE,
                                       "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode()
                compressed = "gzip" in accepted or model == UNASKED
                if compressed:
                    data = gzip.compress(data)
                self.send_response(200)
                self.send_header("content-type", kind)
                if compressed or model == EMPTY:
                    self.send_header("content-encoding", "gzip" if compressed else "")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)


@pytest.fixture(scope="module")
def upstream():
    with CompressingUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(upstream, tmp_path_factory):
    config = f"upstreams:\n  - name: zipping\n    base_url: {upstream.api}\n    models: [gpt-z, {UNASKED}, {EMPTY}, text-embedding-z]\n"
    with LiveServer(tmp_path_factory.mktemp("gateway"), env={"LLM_BACKEND_LOCAL_MODELS": "false"}, config=config) as live:
        yield live


def _prompt_tokens(live: LiveServer, model: str) -> float:
    return sum(value for (name, labels), value in scrape(live).items()
               if name == "llm_backend_prompt_tokens_total" and ("model", model) in labels)


def test_a_client_accepting_gzip_is_answered_and_metered_as_any_other(gateway, upstream):
    client = openai.OpenAI(base_url=gateway.api, api_key="anything", default_headers={"Accept-Encoding": ACCEPTING})
    chat_before, embedded_before = _prompt_tokens(gateway, "gpt-z"), _prompt_tokens(gateway, "text-embedding-z")
    asked_from = len(upstream.asked)
    messages = [{"role": "user", "content": "Say hi."}]

    whole = client.chat.completions.create(model="gpt-z", messages=messages)
    streamed = list(client.chat.completions.create(model="gpt-z", messages=messages, stream=True, stream_options={"include_usage": True}))
    embedded = client.embeddings.create(model="text-embedding-z", input="hi")

    assert whole.choices[0].message.content == "Hi there" and whole.usage.prompt_tokens == PROMPT_TOKENS
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices) == "Hi there"
    assert streamed[-1].usage.prompt_tokens == PROMPT_TOKENS
    assert embedded.data[0].embedding == [0.5, 0.25]
    # Each answer counted (before: none of them, the meter reading gzip as nothing).
    assert _prompt_tokens(gateway, "gpt-z") - chat_before == 2 * PROMPT_TOKENS
    assert _prompt_tokens(gateway, "text-embedding-z") - embedded_before == PROMPT_TOKENS
    assert upstream.asked[asked_from:] == ["identity"] * 3  # the client's gzip never went on


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_answer_compressed_unasked_is_refused_not_passed_on_unread(gateway, stream):
    def refused() -> float:
        return sum(value for (name, labels), value in scrape(gateway).items()
                   if name == "llm_backend_upstream_errors_total" and ("reason", "compressed") in labels)

    before, tokens_before = refused(), _prompt_tokens(gateway, UNASKED)
    answer = httpx.post(gateway.api + "/chat/completions", timeout=30,
                        json={"model": UNASKED, "stream": stream, "messages": [{"role": "user", "content": "Say hi."}]})
    assert answer.status_code == 502, answer.text[:300]
    assert answer.json()["error"]["code"] == "upstream_unreadable"
    assert "content-encoding" not in answer.headers
    assert refused() - before == 1
    assert _prompt_tokens(gateway, UNASKED) == tokens_before


def test_an_empty_content_encoding_names_no_coding_and_is_read(gateway):
    before = _prompt_tokens(gateway, EMPTY)
    answer = httpx.post(gateway.api + "/chat/completions", timeout=30, json={"model": EMPTY, "messages": [{"role": "user", "content": "Say hi."}]})
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["choices"][0]["message"]["content"] == "Hi there"
    assert _prompt_tokens(gateway, EMPTY) - before == PROMPT_TOKENS
