"""An upstream's event stream relayed with OpenAI's line ends whatever the upstream used
(``\\r\\n``: sse-starlette's default, so llama-cpp-python's server; ``\\r``; ``\\n``), however
its bytes were cut into chunks on the way. A fresh seed each run, printed for replay."""

from __future__ import annotations

import asyncio
import random

import pytest

from llm_backend.backends.upstream.relay import openai_line_ends
from tests.support.fuzz import SEED

EVENTS = ['data: {"id":"c1","choices":[{"delta":{"content":"a\\r\\nb"}}]}', "data: [DONE]"]


def _relay(body: bytes, cuts: list[int]) -> bytes:
    async def chunks():
        start = 0
        for cut in [*cuts, len(body)]:
            yield body[start:cut]
            start = cut

    async def collect():
        return b"".join([chunk async for chunk in openai_line_ends(chunks())])

    return asyncio.run(collect())


@pytest.mark.parametrize("line_end", [b"\r\n", b"\r", b"\n"], ids=["crlf", "cr", "lf"])
def test_any_line_ends_cut_anywhere_are_relayed_as_openai_sends_them(line_end):
    rng = random.Random(SEED)
    body = b"".join(event.encode() + line_end + line_end for event in EVENTS)
    expected = b"".join(event.encode() + b"\n\n" for event in EVENTS)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(0, 8)))
        assert _relay(body, cuts) == expected, f"seed {SEED}, cuts {cuts}"
