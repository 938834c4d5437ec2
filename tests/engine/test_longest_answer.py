"""The longest answer in the engine, on the real default GGUF driven directly (issue #59):
without ``max_answer`` it is the model's trained window (a GGUF has no key for a longest
answer), a request's ``max_tokens`` is fitted to it, and a ``max_tokens`` above the ceiling
is refused before its prompt is rendered."""

from __future__ import annotations

import llama_cpp
import pytest

from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.errors import RequestError
from tests.support.models import default_gguf

TRAINED = 8192  # SmolLM2-135M: llama.context_length in its GGUF


def engine_of(**config) -> Engine:
    from llama_cpp import _logger

    _logger.set_verbose(False)
    return Engine({"path": str(default_gguf()), "n_ctx": 512, "parallel": 1, "n_threads": 1, **config}, lambda event: None)


@pytest.fixture(scope="module")
def engine():
    engine = engine_of()
    yield engine
    engine.close()


def chat(**params) -> dict:
    return {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0, **params}


def test_the_longest_answer_is_the_trained_window_by_default(engine):
    assert engine.submission.max_answer == llama_cpp.llama_model_n_ctx_train(engine.model.model) == TRAINED


def test_max_tokens_is_fitted_to_a_set_longest_answer():
    engine = engine_of(max_answer=16)
    try:
        engine.submit("fitted", "chat", chat(max_tokens=32000))
        assert engine.running["fitted"].max_tokens == 16
    finally:
        engine.close()


def test_max_tokens_above_the_ceiling_is_refused_before_the_prompt_is_rendered(engine):
    # Messages no template could render: the refusal comes first.
    with pytest.raises(RequestError) as raised:
        engine.submit("refused", "chat", {"messages": None, "max_tokens": 10**9, "max_tokens_param": "max_completion_tokens"})
    assert (raised.value.status, raised.value.param) == (400, "max_completion_tokens")
    assert raised.value.message.startswith("max_completion_tokens is too large: 1000000000. This model accepts at most 131072")
