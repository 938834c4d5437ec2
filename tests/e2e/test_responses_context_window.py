"""The context window of the Responses API against the real local model (SmolLM2; the
truncation tests on a server with a 512-token context), through the official SDK.
``truncation: "auto"``: a conversation longer than the context is answered from its newest
items, exactly the longest tail that leaves room for the answer; ``disabled`` (the default)
keeps OpenAI's 400. Before, ``auto`` was echoed and the input still got the 400.
``context_management``: a prompt past the compaction threshold is refused naming it (it was
accepted and ignored), and ``include: ["message.output_text.logprobs"]`` gives the logprobs
(it was ignored)."""

from __future__ import annotations

import openai
import pytest

from llm_backend.settings.model import AGENT_WINDOW
from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.server import LiveServer

# The truncation tests run on a server of their own with a 512-token context: the same
# code keeps the tail that fits, and the model reads at most ~500 tokens where it read
# ~2030 of a window of 2048 (prefilling that cost 16 CPU-s a run; a server start, ~2.5).
N_CTX = 512
DEFAULT_N_CTX = AGENT_WINDOW  # the session server's, served without a config (README: LLAMA_CONTEXT_SIZE)
ANSWER = 16
HISTORY = 10  # exchanges: about 950 tokens, nearly twice the context (the same in both tests:
# the second finds the tail the first computed cached)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> openai.OpenAI:
    with LiveServer(tmp_path_factory.mktemp("context-window"), env={"LLAMA_CONTEXT_SIZE": str(N_CTX)}) as live:
        yield sdk(live, api_key="anything")


def turns(count: int) -> list[dict]:
    """``count`` user/assistant exchanges of about 60 tokens each, numbered."""
    items = []
    for number in range(count):
        items.append({"role": "user", "content": f"Note {number}: " + "the lighthouse keeper counted ships at dusk " * 5})
        items.append({"role": "assistant", "content": f"Noted {number}: " + "ships counted, the lamp was lit " * 5})
    return items


@pytest.fixture(scope="module")
def long_input() -> list[dict]:
    return [*turns(HISTORY), {"role": "user", "content": "What was the last note about?"}]


def count(client: openai.OpenAI, items: list[dict], **options) -> int:
    return client.responses.input_tokens.count(model=MODEL, input=items, **options).input_tokens


def test_a_conversation_longer_than_the_context_is_a_400_without_truncation(small, long_input):
    assert count(small, long_input) > N_CTX
    with pytest.raises(openai.BadRequestError) as caught:
        small.responses.create(model=MODEL, input=long_input, max_output_tokens=ANSWER)
    assert caught.value.body["code"] == "context_length_exceeded"


def test_auto_keeps_exactly_the_longest_tail_that_leaves_room_for_the_answer(small, long_input):
    budget = N_CTX - N_CTX // 4  # a token count has no max_output_tokens: a quarter is kept free
    truncated = count(small, long_input, truncation="auto")
    # The longest tail of the input (oldest items dropped) whose prompt fits, counted here.
    fitting = next(
        tokens
        for start in range(1, len(long_input))
        if (tokens := count(small, long_input[start:])) <= budget
    )
    assert truncated == fitting


def test_auto_answers_from_the_newest_items_and_stores_the_input_whole(small, long_input):
    response = small.responses.create(
        model=MODEL, input=long_input, max_output_tokens=ANSWER, truncation="auto", temperature=0
    )
    assert response.truncation == "auto" and response.status in ("completed", "incomplete")
    assert response.output_text and response.usage.input_tokens <= N_CTX - ANSWER
    stored = small.responses.input_items.list(response.id, limit=100, order="asc").data
    assert len(stored) == len(long_input)


def test_auto_drops_the_oldest_turns_of_a_stored_conversation(small):
    conversation = small.conversations.create()
    history = turns(HISTORY)
    for start in range(0, len(history), 20):
        small.conversations.items.create(conversation.id, items=history[start : start + 20])
    with pytest.raises(openai.BadRequestError):
        small.responses.create(model=MODEL, conversation=conversation.id, input="And then?", max_output_tokens=ANSWER)
    response = small.responses.create(
        model=MODEL, conversation=conversation.id, input="And then?", max_output_tokens=ANSWER, truncation="auto"
    )
    assert response.output_text and response.usage.input_tokens <= N_CTX - ANSWER
    items = small.conversations.items.list(conversation.id, limit=100).data
    assert len(items) == len(history) + 2  # the whole history stays, with this turn


COMPACTION = [{"type": "compaction", "compact_threshold": 1000}]


def test_a_prompt_past_the_compaction_threshold_is_refused_naming_context_management(client):
    history = turns(12)  # about 1 400 tokens
    assert 1000 < count(client, history) < DEFAULT_N_CTX - ANSWER
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input=history, max_output_tokens=ANSWER, context_management=COMPACTION)
    assert (caught.value.body["param"], caught.value.body["code"]) == ("context_management", "unsupported_parameter")
    below = client.responses.create(model=MODEL, input="Hi", max_output_tokens=ANSWER, context_management=COMPACTION)
    assert below.output_text


def test_include_logprobs_gives_each_output_tokens_logprob(client):
    response = client.responses.create(
        model=MODEL, input="Say hello.", max_output_tokens=ANSWER, include=["message.output_text.logprobs"]
    )
    part = response.output[0].content[0]
    assert part.logprobs and all(entry.logprob <= 0 for entry in part.logprobs)
