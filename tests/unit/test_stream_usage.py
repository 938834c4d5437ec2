"""OpenAI's stream as asked with ``include_usage`` (every chunk ``"usage":null``, a last
chunk with ``"choices":[]`` and the usage), passed to a client that did not ask: byte for
byte the stream OpenAI sends without it (no ``usage`` member anywhere), and the usage told
to the meter once, however the network cut the bytes. The upstream in the end-to-end tests
is this service, which sends no ``"usage":null`` members: their shape is OpenAI's, as its
API reference documents the option. A fresh seed each run, printed for replay."""

from __future__ import annotations

import asyncio
import random

from llm_backend.backends.base import Relayed, usage_withheld
from llm_backend.backends.upstream.stream_usage import withheld
from tests.support.fuzz import SEED

HEAD = '"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1727000000,"model":"gpt-4o-mini-2024-07-18"'
CHOICES = [
    '[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]',
    '[{"index":0,"delta":{"content":"usage"},"logprobs":null,"finish_reason":null}]',
    '[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]',
]
USAGE = '{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0}}'
FINGERPRINT = '"system_fingerprint":"fp_f85bea6784"'


def _stream(asked: bool) -> bytes:
    null = ',"usage":null' if asked else ""
    events = [f"data: {{{HEAD},{FINGERPRINT},\"choices\":{choices}{null}}}" for choices in CHOICES]
    if asked:
        events.append(f'data: {{{HEAD},{FINGERPRINT},"choices":[],"usage":{USAGE}}}')
    return "".join(event + "\n\n" for event in [*events, "data: [DONE]"]).encode()


def _passed(body: bytes, cuts: list[int]) -> tuple[bytes, list[dict]]:
    heard: list[dict] = []

    async def chunks():
        start = 0
        for cut in [*cuts, len(body)]:
            yield body[start:cut]
            start = cut

    async def collect():
        usage_withheld.set(heard.append)
        answer = withheld(Relayed(200, [(b"content-type", b"text/event-stream")], chunks=chunks()))
        return b"".join([chunk async for chunk in answer.chunks])

    return asyncio.run(collect()), heard


def test_the_usage_a_client_did_not_ask_for_leaves_the_stream_as_openai_sends_it_without():
    rng = random.Random(SEED)
    asked, unasked = _stream(asked=True), _stream(asked=False)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(asked)), rng.randint(0, 10)))
        passed, heard = _passed(asked, cuts)
        assert passed == unasked, f"seed {SEED}, cuts {cuts}"
        assert heard == [{"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                          "prompt_tokens_details": {"cached_tokens": 0}}], f"seed {SEED}, cuts {cuts}"


def test_usage_on_a_chunk_with_choices_is_taken_off_that_chunk_and_counted():
    # Some OpenAI-compatible servers put the usage on the last chunk that has choices.
    body = f'data: {{{HEAD},"choices":{CHOICES[2]},"usage":{USAGE}}}\n\ndata: [DONE]\n\n'.encode()
    passed, heard = _passed(body, [len(body) // 2])
    assert passed == f'data: {{{HEAD},"choices":{CHOICES[2]}}}\n\ndata: [DONE]\n\n'.encode()
    assert [usage["total_tokens"] for usage in heard] == [11]


def test_a_stream_cut_off_without_its_blank_line_ends_with_its_last_chunk_without_usage():
    # The last event, not ended by a blank line, is read at the stream's end: it was joined
    # as a sequence of its bytes (a TypeError that broke the stream).
    asked = b"\n\n".join(_stream(asked=True).split(b"\n\n")[:3])
    passed, heard = _passed(asked, [])
    assert passed == b"\n\n".join(_stream(asked=False).split(b"\n\n")[:3]) and heard == []


def test_a_long_chunk_loses_its_usage_null_and_keeps_every_other_byte():
    content = "x" * (3 << 20)  # past the slices a long event is searched in
    head = f'data: {{{HEAD},"choices":[{{"index":0,"delta":{{"content":"{content}"}},"finish_reason":null}}]'
    body = f'{head},"usage":null}}\n\ndata: {{{HEAD},"choices":[],"usage":{USAGE}}}\n\ndata: [DONE]\n\n'.encode()
    passed, heard = _passed(body, [len(body) // 3])
    assert passed == f"{head}}}\n\ndata: [DONE]\n\n".encode() and [usage["total_tokens"] for usage in heard] == [11]

