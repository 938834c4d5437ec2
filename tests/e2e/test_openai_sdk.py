"""The official openai SDK against a live server running the real default model."""

from __future__ import annotations

import base64
import math
import struct

import openai
import pytest

from llm_backend.settings import ModelConfig
from tests.conftest import MODEL
from tests.support.clients import sdk
from tests.support.server import access_lines, log_size

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_list_shows_the_local_model(client):
    ids = [model.id for model in client.models.list()]
    assert MODEL in ids


def test_models_retrieve_returns_the_model(client):
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model"


def test_chat_completion_answers_with_real_text_and_usage(client):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=16)
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    assert completion.system_fingerprint
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 16
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_the_next_turn_of_a_conversation_reports_its_prompt_as_cached(client):
    first_turn = [{"role": "user", "content": "Name three rivers of Europe."}]
    first = client.chat.completions.create(model=MODEL, messages=first_turn, max_tokens=8, temperature=0)
    assert 0 <= first.usage.prompt_tokens_details.cached_tokens < first.usage.prompt_tokens
    answer = {"role": "assistant", "content": first.choices[0].message.content}
    second_turn = [*first_turn, answer, {"role": "user", "content": "Which one is the longest?"}]
    stream = client.chat.completions.create(
        model=MODEL, messages=second_turn, max_tokens=4, stream=True, stream_options={"include_usage": True}
    )
    usage = [chunk.usage for chunk in stream if chunk.usage][0]
    # The whole first prompt is in the KV cache of the sequence that answered it.
    assert first.usage.prompt_tokens <= usage.prompt_tokens_details.cached_tokens < usage.prompt_tokens


def test_chat_completion_streams_token_by_token(client):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12, stream=True, temperature=0)
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3, "expected several content deltas, one per token"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert len({chunk.id for chunk in chunks}) == 1


def test_stream_ends_with_done_over_raw_sse(server):
    import httpx

    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", server.api + "/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_chat_accepts_developer_role_and_text_parts(client):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]},
        ],
        max_completion_tokens=8,
    )
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens <= 8


def test_same_seed_at_temperature_zero_gives_identical_answers(client):
    def ask() -> str:
        return client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=24, temperature=0, seed=7
        ).choices[0].message.content

    assert ask() == ask() == ask()


def test_stop_sequence_is_not_in_the_output(client):
    completion = client.completions.create(model=MODEL, prompt="1, 2, 3, 4, 5,", max_tokens=30, temperature=0, stop=["8"])
    assert "8" not in completion.choices[0].text
    assert completion.choices[0].finish_reason == "stop"


def test_completion_answers_a_prompt(client):
    completion = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8)
    assert completion.choices[0].text
    assert completion.object == "text_completion"
    assert completion.usage.completion_tokens <= 8


def test_completion_streams(client):
    chunks = list(client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8, stream=True))
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_embeddings_are_one_normalized_vector_per_input(client):
    result = client.embeddings.create(model=MODEL, input=["hello world", "a different sentence", "x"])
    assert [item.index for item in result.data] == [0, 1, 2]
    sizes = {len(item.embedding) for item in result.data}
    assert len(sizes) == 1 and sizes.pop() > 100
    for item in result.data:
        assert math.isclose(math.sqrt(sum(v * v for v in item.embedding)), 1.0, rel_tol=1e-4)
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0


def test_embedding_dimensions_equal_to_the_native_size_are_accepted(client):
    # Llama Stack sends `dimensions` on every request it makes for a vector store.
    native = len(client.embeddings.create(model=MODEL, input="hello").data[0].embedding)
    result = client.embeddings.create(model=MODEL, input="hello", dimensions=native)
    assert len(result.data[0].embedding) == native


def test_embedding_dimensions_other_than_the_native_size_raise_bad_request(client):
    native = len(client.embeddings.create(model=MODEL, input="hello").data[0].embedding)
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model=MODEL, input="hello", dimensions=native // 2)
    assert raised.value.param == "dimensions"


def test_embedding_base64_decodes_to_the_float_vector(server):
    import httpx

    body = {"model": MODEL, "input": "hello world"}
    floats = httpx.post(server.api + "/embeddings", json=body, timeout=60).json()["data"][0]["embedding"]
    encoded = httpx.post(server.api + "/embeddings", json={**body, "encoding_format": "base64"}, timeout=60).json()
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(decoded) == len(floats)
    assert all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7) for a, b in zip(decoded, floats))


def test_unknown_model_raises_not_found(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert raised.value.code == "model_not_found"


def test_invalid_parameter_raises_bad_request_naming_it(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature="hot")
    assert raised.value.param == "temperature"


def test_missing_messages_raises_bad_request(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=None)
    assert raised.value.param == "messages"


def test_prompt_longer_than_the_context_is_context_length_exceeded(client):
    long_text = "word " * 33000  # the window: 32768
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": long_text}], max_tokens=4)
    assert raised.value.code == "context_length_exceeded"
    assert "maximum context length" in raised.value.message


def test_an_unserved_operation_fails_at_once_with_a_clear_message(server):
    # The SDK's own retry policy (2 retries): a 501 or 5xx would be sent three times.
    client = sdk(server, api_key="anything", max_retries=2)
    before = log_size(server)
    with pytest.raises(openai.NotFoundError) as raised:
        client.fine_tuning.jobs.list()
    assert raised.value.code == "unknown_url"
    assert "listPaginatedFineTuningJobs" in raised.value.message and "GET /v1/fine_tuning/jobs" in raised.value.message
    assert len(access_lines(server, "/v1/fine_tuning/jobs", since=before, expect=1)) == 1


def _solo(client, prompt):
    return client.completions.create(model=MODEL, prompt=prompt, max_tokens=5, temperature=0)


def test_completion_with_several_prompts_answers_each(client):
    prompts = ["The capital of France is", "One, two, three,"]
    completion = client.completions.create(model=MODEL, prompt=prompts, max_tokens=5, temperature=0, n=2)
    assert [choice.index for choice in completion.choices] == [0, 1, 2, 3]
    solo = [_solo(client, prompt) for prompt in prompts]
    # Choice index = prompt_index * n + choice, as OpenAI numbers them.
    assert [completion.choices[i].text for i in (0, 1, 2, 3)] == [solo[0].choices[0].text] * 2 + [solo[1].choices[0].text] * 2
    assert completion.usage.completion_tokens == 2 * sum(s.usage.completion_tokens for s in solo)
    assert completion.usage.prompt_tokens == sum(s.usage.prompt_tokens for s in solo)


def test_streamed_completion_with_several_prompts_keeps_them_apart(client):
    prompts = [[504, 3575, 282, 4649, 314], [1191, 28, 827, 28]]  # a list of token arrays
    stream = client.completions.create(
        model=MODEL, prompt=prompts, max_tokens=5, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    texts: dict[int, str] = {}
    usages = []
    finished = set()
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finished.add(choice.index)
        if chunk.usage:
            usages.append(chunk.usage)
    assert finished == {0, 1}
    solo = [_solo(client, prompt) for prompt in prompts]
    assert [texts[0], texts[1]] == [s.choices[0].text for s in solo]
    (usage,) = usages
    assert usage.completion_tokens == sum(s.usage.completion_tokens for s in solo)
    assert usage.prompt_tokens == sum(s.usage.prompt_tokens for s in solo)


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_with_more_prompts_than_sequences_is_400_not_a_hang(client, stream):
    # One prompt more than the default model decodes at once.
    prompts = ["a"] * (ModelConfig.model_fields["parallel"].default + 1)
    with pytest.raises(openai.BadRequestError) as raised:
        client.completions.create(model=MODEL, prompt=prompts, max_tokens=2, stream=stream)
    assert raised.value.param == "prompt"
    # ... and the server still answers afterwards.
    assert client.completions.create(model=MODEL, prompt="a", max_tokens=2).choices
