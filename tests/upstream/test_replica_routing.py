"""Gateway replicas that route alike (issue #51): two engines (this service on
``synthetic://test-tiny``, answering " the" each token: what is measured is where a turn goes
and what it finds cached there, not what it says) as one pool's deployments behind two
gateway replicas, each on its own SQLite database, so nothing is shared between them but
their configuration. Conversations' turns
alternate between the gateways and still find their prefix cached on the engine that served
the turn before: every replica hashes a conversation's `prompt_cache_key` onto the same
engine (backends/ring.py). Measured before the ring (routes remembered per process): 72 % of
later turns' prompt tokens cached when turns alternate, 97 % on one gateway."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.support.clients import sdk
from tests.support.models import ONE_WORD, TINY, TINY_CONFIG
from tests.support.server import LiveServer, access_lines, start_together

MODEL = TINY
CHAT = "/v1/chat/completions"
CONVERSATIONS = 6
# ~270 tokens each, its own per conversation: what a later turn finds cached, against the ~21
# a turn adds (its question, the answer before): 93 % of later turns' prompt tokens cached, as
# on SmolLM2 (greedy: the same each run), and a turn sent to the other engine finds none of
# its prompt cached. On SmolLM2 the first turns' prefill made this file 16 CPU-s; on
# test-tiny it takes 8, most of them four servers' starts.
RULES = "Answer in one short sentence. Never use lists. Be polite and precise. Keep to the topic. "


def system_prompt(number: int) -> str:
    return f"You are assistant number {number}, a guide to topic {number * 7 + 3}. " + RULES * 12


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> dict[str, LiveServer]:
    servers = {name: LiveServer(tmp_path_factory.mktemp(f"engine-{name}"), config=TINY_CONFIG) for name in ("a", "b")}
    start_together(*servers.values())
    yield servers
    for live in servers.values():
        live.stop()


@pytest.fixture(scope="module")
def gateways(engines, tmp_path_factory) -> list[LiveServer]:
    """Two replicas of the same configuration (no local model), each with its own data
    folder, hence its own SQLite database: no state in common."""
    config = f"""
upstream_catch_all: false
pool_cooldown: 60
pool_probe_interval: 0.5
upstreams:
  - name: a
    base_url: {engines["a"].api}
    models: [{MODEL}]
  - name: b
    base_url: {engines["b"].api}
    models: [{MODEL}]
"""
    env = {"LLM_BACKEND_LOCAL_MODELS": "false"}
    replicas = [LiveServer(tmp_path_factory.mktemp(f"gateway-{n}"), env=env, config=config) for n in (1, 2)]
    start_together(*replicas)
    yield replicas
    for live in replicas:
        live.stop()


def served_by(engines: dict[str, LiveServer], request_id: str) -> str:
    """The engine whose access log holds the request the gateway sent it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for name, live in engines.items():
            try:
                if access_lines(live, CHAT, request_id=request_id):
                    return name
            except json.JSONDecodeError:  # a line read as it was being written: read again
                pass
        time.sleep(0.05)
    raise AssertionError(f"no engine logged {request_id}")


def test_turns_alternating_between_gateways_find_their_prefix_cached(engines, gateways):
    clients = [sdk(live) for live in gateways]
    conversations = [
        {"key": f"session-{n}", "messages": [{"role": "system", "content": system_prompt(n)}]} for n in range(CONVERSATIONS)
    ]

    def turn(number: int, conversation: dict, step: int) -> tuple[str, int, int]:
        """One turn of a conversation, on gateway (number + step) % 2: its engine, its prompt
        tokens and those of them cached."""
        conversation["messages"].append({"role": "user", "content": f"Tell me one fact, number {step}."})
        raw = clients[(number + step) % 2].chat.completions.with_raw_response.create(
            model=MODEL, messages=conversation["messages"], max_tokens=6, temperature=0, logit_bias=ONE_WORD,
            prompt_cache_key=conversation["key"]
        )
        answer = raw.parse()
        conversation["messages"].append({"role": "assistant", "content": answer.choices[0].message.content})
        usage = answer.usage
        return served_by(engines, raw.headers["x-upstream-request-id"]), usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens

    # First turns one after another (no load to spill): the hash alone spreads them.
    homes = [turn(n, c, 0)[0] for n, c in enumerate(conversations)]
    split = [homes.count("a"), homes.count("b")]
    assert max(split) <= 1.5 * CONVERSATIONS / 2, split

    prompt = cached = 0
    for step in (1, 2):  # each later turn on the other gateway than the turn before
        for number, conversation in enumerate(conversations):
            engine, tokens, hits = turn(number, conversation, step)
            assert engine == homes[number], (number, step, engine, homes[number])
            prompt, cached = prompt + tokens, cached + hits
    print(f"split {split}; later turns: {cached}/{prompt} prompt tokens cached ({cached / prompt:.0%})")
    assert cached / prompt >= 0.9, (cached, prompt)

    # Engine b dies mid-run: its conversations move to a, a's stay where their prefix is.
    os.killpg(engines["b"].process.pid, signal.SIGKILL)
    engines["b"].process.wait()
    prompt = cached = 0
    for number, conversation in enumerate(conversations):
        engine, tokens, hits = turn(number, conversation, 3)  # no request fails: b's fail over
        assert engine == "a", (number, engine)
        if homes[number] == "a":
            prompt, cached = prompt + tokens, cached + hits
    print(f"after b died: a's conversations {cached}/{prompt} prompt tokens cached ({cached / prompt:.0%})")
    assert prompt and cached / prompt >= 0.9, (cached, prompt)
