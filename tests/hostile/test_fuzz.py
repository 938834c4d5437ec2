"""Hostile shapes, fuzzed (issue #33): each run draws fresh ones from the run's seed (printed
in pytest's header; replay with FUZZ_SEED=<seed>): nesting at any depth, schemas whose grammar
would explode, per-token work around its budgets, bodies padded past every in-memory
threshold under any content type. Every answer is the result or an OpenAI-shaped 4xx, never
a 5xx, and no process of the service grows past its budget."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from tests.conftest import MODEL
from tests.support.fuzz import SEED

CASES = 24
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
MiB = 1 << 20


def nested_schema(rng: random.Random) -> str:
    levels = rng.choice([rng.randrange(1, 40), rng.randrange(40, 600)])
    kind = rng.choice(["object", "array"])
    inner = '{"type": "string"}'
    for _ in range(levels):
        inner = f'{{"type": "object", "properties": {{"x": {inner}}}}}' if kind == "object" else f'{{"type": "array", "items": {inner}}}'
    return inner


def exploding_schema(rng: random.Random) -> dict:
    count = rng.choice([rng.randrange(1, 1001), rng.randrange(1001, 10**7)])
    keyword = rng.choice(["minItems", "maxItems", "minLength", "maxLength"])
    base = {"type": "array", "items": {"type": "integer"}} if "Items" in keyword else {"type": "string"}
    return {**base, keyword: count}


def shape(rng: random.Random) -> tuple[str, bytes, str]:
    """(what, body, content type) of one hostile chat request."""
    kind = rng.choice(["nested", "exploding", "logit_bias", "stop", "padded", "many-messages"])
    if kind == "nested":
        body = json.dumps({**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": "@"}}})
        return kind, body.replace('"@"', nested_schema(rng)).encode(), "application/json"
    if kind == "exploding":
        schema = exploding_schema(rng)
        return kind, json.dumps({**CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "e", "schema": schema}}}).encode(), "application/json"
    if kind == "logit_bias":
        count = rng.randrange(900, 1200)
        return kind, json.dumps({**CHAT, "logit_bias": {str(rng.randrange(49152)): rng.randrange(-100, 101) for _ in range(count)}}).encode(), "application/json"
    if kind == "stop":
        return kind, json.dumps({**CHAT, "stop": ["s" * rng.randrange(1, 3000) for _ in range(rng.randrange(1, 5))]}).encode(), "application/json"
    if kind == "padded":
        padding = rng.choice([rng.randrange(MiB - 64, MiB + 64), rng.randrange(2 * MiB, 7 * MiB)])
        content_type = rng.choice(["application/json", "text/plain", "application/octet-stream", "application/json; charset=utf-8"])
        return kind, json.dumps(CHAT).encode() + b" " * padding, content_type
    # Size classes: a few, just past the document's 2048 and far past it. A count within the
    # 2048 fits the embedded model's 32,768-token window (6 tokens a message) and is a
    # legitimate prompt, metered like any other, whose prefill alone runs minutes on 2 cores
    # (1000 messages: 45 s idle, llama.cpp in-process 52 s; 2048: 161 s), past the answer's
    # 120 s on CI's loaded cores.
    count = rng.choice([rng.randrange(1, 100), rng.randrange(2049, 2100), rng.randrange(2100, 100_000)])
    messages = [{"role": "user", "content": "x"}] * count
    return kind, json.dumps({**CHAT, "messages": messages}).encode(), "application/json"


@pytest.mark.parametrize("case", range(CASES))
def test_a_fuzzed_hostile_request_is_answered_within_its_budget(server, measured, case):
    rng = random.Random(SEED * 1000 + case)
    what, body, content_type = shape(rng)
    replay = f"seed {SEED}, case {case} ({what}, {len(body)} bytes)"
    with measured(server):
        try:
            answer = httpx.post(server.api + "/chat/completions", content=body, headers={"content-type": content_type}, timeout=120)
        except httpx.TimeoutException:
            pytest.fail(f"{replay}: no answer in 120 s")
    assert answer.status_code < 500, f"{replay}: {answer.text[:300]}"
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"], replay
