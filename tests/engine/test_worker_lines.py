"""One write a decode (issue #57): a real worker process, two streams decoding together; each
line it writes to the API process is one decode's events, a token of each stream, and the
``stats`` event it owes rides in such a line instead of a write of its own. In both orders of
a step (engine/batching.py). On ``synthetic://test-tiny`` (1/9 of the default model's CPU a
generated token): what is counted is lines and events, the same on any model; with a stats
interval of a twentieth of the worker's (worker.py's ``STATS_INTERVAL``, set in the worker
process before it starts), several stats are owed while the streams decode, each of which
must ride a decode's line, in a fraction of the decoding (and CPU) that one a second took."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import llama_cpp
import pytest
from llama_cpp import _internals

from llm_backend.backends.llama.worker_process import ENGINE_ENVIRONMENT, ENGINE_MODULE
from tests.support.models import tiny_gguf

STATS_INTERVAL = 0.05
TOKENS = 300  # at ~750 tokens/s a stream (2 cores, quiet), about 8 stats intervals


def end_of_generation_tokens() -> list[int]:
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = _internals.LlamaModel(path_model=str(tiny_gguf()), params=params, verbose=False)
    vocab = model.vocab
    return [token for token in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, token)]


def worker_lines(overlap: bool) -> list[list[dict]]:
    """Every line the worker wrote after its hello, until both answers were done."""
    config = {"path": str(tiny_gguf()), "n_ctx": 512, "parallel": 2, "n_threads": 1, "overlap": overlap}
    # The worker's own module and main (``-m ENGINE_MODULE``), its interval shortened first.
    start = f"import {ENGINE_MODULE} as worker; worker.STATS_INTERVAL = {STATS_INTERVAL}; worker.main()"
    process = subprocess.Popen(
        [sys.executable, "-c", start, json.dumps(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env={**ENGINE_ENVIRONMENT, **os.environ}, text=True,
    )
    try:
        assert json.loads(process.stdout.readline())["event"] == "ready"
        endless = {str(token): -100 for token in end_of_generation_tokens()}
        for rid, topic in (("a", "a lighthouse"), ("b", "a forest")):
            params = {"messages": [{"role": "user", "content": f"Write a long story about {topic}."}], "temperature": 0,
                      "max_tokens": TOKENS, "logit_bias": endless}
            process.stdin.write(json.dumps({"id": rid, "op": "chat", "params": params}) + "\n")
        process.stdin.flush()
        lines, done = [], set()
        while done != {"a", "b"}:
            line = json.loads(process.stdout.readline())
            lines.append(line)
            done |= {event["id"] for event in line if event.get("event") == "done"}
        return lines
    finally:
        process.stdin.close()
        process.wait(30)


@pytest.mark.parametrize("overlap", [False, True], ids=["plain", "overlapped"])
def test_a_busy_worker_writes_one_line_a_decode_with_a_token_of_each_stream(overlap):
    lines = worker_lines(overlap)

    def deltas(line: list[dict]) -> list[str]:
        return sorted(event["id"] for event in line if event.get("event") == "delta")

    both = [index for index, line in enumerate(lines) if deltas(line) == ["a", "b"]]
    first, last = both[0], next(index for index, line in enumerate(lines) if any(e.get("finish_reason") for e in line))
    steady = lines[first:last]
    assert len(steady) >= TOKENS - 10
    # Each line is one decode of both streams: no line without their tokens, none with two of one.
    assert all(deltas(line) == ["a", "b"] for line in steady)
    stats = [line for line in steady if any(event.get("event") == "stats" for event in line)]
    assert stats  # it owed some while decoding, and they came with a decode's tokens
