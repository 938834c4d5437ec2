"""Prefill once through the API (issue #34): cached_tokens as OpenAI reports them, never a
tenant's prefix for another key, shared system prompts declared by the operator, and a
conversation routed back to the engine worker that holds it. On ``synthetic://test-tiny``:
what is measured is what is cached and where, not what the model says (an answer carried
into the next turn is " the" each token, ``ONE_WORD``, so it tokenizes back as decoded)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.clients import sdk
from tests.support.models import ONE_WORD, TINY
from tests.support.server import LiveServer

MODEL = TINY

KEY_A, KEY_B = "sk-prefix-tenant-a", "sk-prefix-tenant-b"
# Fresh keys, one a probe: a key's own earlier probe would be its own cache.
PROBES = [f"sk-prefix-probe-{n}" for n in range(4)]
PRIVATE = "You answer questions about the lighthouse at Cape Verity, keeper's log in hand. " * 8
PERSONA = "You are the librarian of a small town library, kind and brief in every answer. " * 8
OPERATOR = "You help people plan hikes in the hills: distances, water, weather and the way back. " * 8
QUESTION = [{"role": "user", "content": "What should I bring?"}]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # Two engine workers of two sequences each: routing has a choice to make.
    config = f"""
models:
  - id: {MODEL}
    source: synthetic://test-tiny
    parallel: 2
    slots: 2
    defaults:
      temperature: 0
    shared_prefixes:
      - "{OPERATOR}"
    personas:
      - id: librarian
        system_prompt: "{PERSONA}"
        shared_prefix: true
"""
    env = {"LLM_BACKEND_API_KEYS": ",".join([KEY_A, KEY_B, *PROBES])}
    with LiveServer(tmp_path_factory.mktemp("prefix-cache"), config=config, env=env) as server:
        yield server


def ask(live: LiveServer, key: str, system: str | None, model: str = MODEL, max_tokens: int = 8):
    messages = ([{"role": "system", "content": system}] if system else []) + QUESTION
    return sdk(live, api_key=key).chat.completions.create(model=model, messages=messages, max_tokens=max_tokens)


def cached(answer) -> int:
    return answer.usage.prompt_tokens_details.cached_tokens


def test_another_key_sending_the_same_prefix_finds_nothing_cached_and_the_same_answer(live):
    first = ask(live, KEY_A, PRIVATE)
    again = ask(live, KEY_A, PRIVATE)
    other = ask(live, KEY_B, PRIVATE)
    assert cached(again) >= 128  # its own: the system prompt's whole blocks
    assert cached(other) < 32
    assert other.choices[0].message.content == first.choices[0].message.content == again.choices[0].message.content


def test_a_system_prompt_the_operator_shares_is_computed_once_for_every_key(live):
    for model, system in ((f"{MODEL}:librarian", None), (MODEL, OPERATOR)):
        first = ask(live, KEY_A, system, model)
        other = ask(live, KEY_B, system, model)
        assert 128 <= cached(other) < other.usage.prompt_tokens - 8, model  # the system prompt, not the question
        assert other.choices[0].message.content == first.choices[0].message.content


def test_another_keys_tool_description_under_a_shared_system_prompt_is_not_told_by_cached_tokens(live):
    """Issue #56 item 1: the shared part is the operator's system prompt alone, not the
    tools the template writes beside it; a right guess of another key's tool description
    (a PIN) and a wrong one get the same cached_tokens, on Chat and on Messages."""
    def tool(description: str) -> dict:
        return {"type": "function", "function": {"name": "lookup_order", "description": description, "parameters": {"type": "object"}}}

    secret = "Look up an order. The support PIN is 4821." + " Ask for the order number and the name on it." * 6
    messages = [{"role": "system", "content": OPERATOR}, *QUESTION]
    sdk(live, api_key=KEY_A).chat.completions.create(model=MODEL, messages=messages, tools=[tool(secret)], max_tokens=2)

    def guess(digits: str, chat_key: str, messages_key: str) -> tuple[int, int]:
        description = "Look up an order. The support PIN is " + digits + " My own words follow here, not the owner's." * 6
        chat = sdk(live, api_key=chat_key).chat.completions.create(model=MODEL, messages=messages, tools=[tool(description)], max_tokens=2)
        anthropic_tool = {"name": "lookup_order", "description": description, "input_schema": {"type": "object"}}
        reply = httpx.post(f"{live.base_url}/v1/messages", headers={"x-api-key": messages_key, "anthropic-version": "2023-06-01"}, json={
            "model": MODEL, "system": OPERATOR, "messages": QUESTION, "tools": [anthropic_tool], "max_tokens": 2,
        }, timeout=120)
        return cached(chat), reply.json()["usage"]["cache_read_input_tokens"]

    right, wrong = guess("48", *PROBES[:2]), guess("47", *PROBES[2:])
    assert right == wrong
    assert right[0] >= 128  # the operator's system prompt is still shared


def test_a_conversation_goes_back_to_the_engine_worker_that_holds_it(live):
    """Worker 0 busy with a long answer, a conversation starts on worker 1; its next turn,
    with both workers free, goes back to worker 1 (the least busy would be worker 0, the
    first) and finds its whole history cached."""
    client = sdk(live, api_key=KEY_A)
    story = [{"role": "user", "content": "Write a very long story about a ship."}]
    # Long enough to be running still when turn1 comes (test-tiny decodes hundreds of tokens a second).
    busy = client.chat.completions.create(model=MODEL, messages=story, max_tokens=3000, stream=True)
    next(iter(busy))  # admitted: worker 0 has one sequence in use
    try:
        messages = [{"role": "system", "content": "You keep the bees of the abbey garden and talk of them. " * 8}, *QUESTION]
        turn1 = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=24, logit_bias=ONE_WORD)
    finally:
        busy.close()
    messages += [{"role": "assistant", "content": turn1.choices[0].message.content},
                 {"role": "user", "content": "And for the way back?"}]
    turn2 = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
    assert cached(turn2) >= 0.8 * turn2.usage.prompt_tokens, (cached(turn2), turn2.usage.prompt_tokens)


def test_completions_and_responses_report_what_was_cached(live):
    client = sdk(live, api_key=KEY_A)
    prompt = PRIVATE + "\nQ: What is kept in the log?\nA:"
    first = client.completions.create(model=MODEL, prompt=prompt, max_tokens=4)
    again = client.completions.create(model=MODEL, prompt=prompt, max_tokens=4)
    assert first.usage.prompt_tokens_details.cached_tokens < 32 <= again.usage.prompt_tokens_details.cached_tokens
    # (instructions do not carry over to the next response: the history goes in the input)
    one = client.responses.create(model=MODEL, input=PRIVATE + " What is the keeper's name?", max_output_tokens=16)
    two = client.responses.create(model=MODEL, previous_response_id=one.id, input="And his dog's?", max_output_tokens=16)
    assert two.usage.input_tokens_details.cached_tokens >= 0.8 * two.usage.input_tokens


def test_a_restarted_server_starts_a_new_session_from_the_prefix_on_disk(tmp_path):
    """Issue #49 item 3: a chat's first part of 256 tokens or more is kept under
    ``<data_dir>/prefixes``; the next server on that data directory (a restart, another
    replica) serves a new session's beginning from it, reported as cached."""
    config = f"models:\n  - id: {MODEL}\n    source: synthetic://test-tiny\n    defaults:\n      temperature: 0\n"
    env = {"LLM_BACKEND_API_KEYS": KEY_A}
    instructions = PRIVATE * 3  # about 400 tokens
    with LiveServer(tmp_path, config=config, env=env) as live:
        first = ask(live, KEY_A, instructions)
    assert cached(first) == 0
    assert list((tmp_path / "data" / "prefixes").glob("*/*.prefix"))
    with LiveServer(tmp_path, config=config, env=env) as live:
        again = ask(live, KEY_A, instructions)
    assert cached(again) >= 256
    assert again.choices[0].message.content == first.choices[0].message.content
