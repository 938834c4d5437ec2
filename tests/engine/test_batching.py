"""The batching engine, driven directly (no processes, no HTTP). On ``synthetic://test-tiny``
(1/26 of the default model's CPU a prompt token, 1/9 a generated one): its mechanics (steps,
chunks, cells, caches, grammars) are the same on any llama GGUF with SmolLM2's vocabulary, and
a greedy answer compared across two paths changes more readily on its random weights' flatter
logits than on SmolLM2's. Its answers are noise, seldom ended by the model: a test that needs
an answer to go on bounds it by ``max_tokens``. On the real default GGUF: the default pool's
sizes, the packaged model's own. A prompt's reuse compared with its cold answer, which on
test-tiny's kernels (Q4_K) gives other bits where the last block is cut from the prompt
(test_prefixes.py), runs on ``test-tiny-q4_1``: the same model in SmolLM2's types (Q4_1),
whose kernels give the same."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.errors import RequestError
from llm_backend.backends.llama.engine.prefixes import BLOCK
from tests.support.engines import Recorder, recording_engine, run
from tests.support.models import default_gguf, tiny_gguf


def engine_on(model) -> Engine:
    config = {"path": str(model), "n_ctx": 512, "parallel": 2, "n_threads": 1}
    return recording_engine(config)


@pytest.fixture(scope="module")
def engine():
    engine = engine_on(tiny_gguf())
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def exact():
    engine = engine_on(tiny_gguf("test-tiny-q4_1"))
    yield engine
    engine.close()


# Longer than a block (64 tokens): shorter prompts are computed again (prefixes.py).
CONTEXT = "Mountains, rivers and planets are what this quiz is about, and answers are short. " * 5


def chat(content: str, **params) -> dict:
    return {"messages": [{"role": "user", "content": content}], "temperature": 0, **params}


def test_grammar_constrains_the_answer(engine):
    engine.submit("g", "chat", chat("Is water wet?", max_tokens=8, grammar='root ::= "yes" | "no"'))
    run(engine)
    assert engine.recorder.text("g") in ("yes", "no")
    assert engine.recorder.finish_reason("g") == "stop"


def test_a_grammar_that_does_not_parse_is_refused_naming_grammar(engine):
    with pytest.raises(RequestError) as raised:
        engine.submit("bad", "chat", chat("Hi", max_tokens=2, grammar="root ::= ("))
    assert raised.value.status == 400 and raised.value.param == "grammar"


@pytest.fixture(scope="module")
def split_engine():
    """Sequences with cells of their own (``kv_shared: false``): a greedy answer is the same
    bits whoever runs beside it. In the shared pool (the default) where a sequence's cells lie
    depends on what the others left, and the last bits of attention with them."""
    engine = recording_engine({"path": str(tiny_gguf()), "n_ctx": 512, "parallel": 2, "n_threads": 1, "kv_shared": False})
    yield engine
    engine.close()


def test_cancel_frees_the_sequence_and_leaves_the_other_untouched(split_engine):
    engine = split_engine
    engine.submit("alone", "chat", chat("Describe a tree.", max_tokens=12))
    run(engine)
    alone = engine.recorder.text("alone")

    engine.submit("kept", "chat", chat("Describe a tree.", max_tokens=12))
    engine.submit("dropped", "chat", chat("Write a long story.", max_tokens=400))
    for _ in range(4):
        engine.step()
    assert engine.cancel("dropped")
    assert engine.free_seqs == [engine.free_seqs[0]]  # the dropped request's sequence is back
    run(engine)
    assert engine.recorder.text("kept") == alone
    assert not any(e["id"] == "dropped" and e["event"] == "usage" for e in engine.recorder.events)
    assert sorted(engine.free_seqs) == [0, 1]


def test_a_prompt_that_fills_the_context_is_context_length_exceeded(engine):
    with pytest.raises(RequestError) as raised:
        engine.submit("long", "completion", {"prompt": "word " * 600, "max_tokens": 2})
    assert raised.value.code == "context_length_exceeded" and raised.value.param == "prompt"


def test_generation_stops_with_length_at_the_end_of_the_context(engine):
    prompt = "one two three four " * 120  # about 480 of the 512 tokens
    engine.submit("full", "completion", {"prompt": prompt, "temperature": 0, "max_tokens": None})
    run(engine)
    usage = next(e for e in engine.recorder.events if e["id"] == "full" and e["event"] == "usage")
    assert engine.recorder.finish_reason("full") == "length"
    assert usage["prompt_tokens"] + usage["completion_tokens"] == 512


def test_a_long_prompt_is_prefilled_in_chunks_while_a_stream_keeps_flowing(engine):
    engine.n_batch = 32  # the context was built for more; a smaller step budget is safe
    try:
        engine.submit("flowing", "chat", chat("Write a long story.", max_tokens=100))
        while engine.running["flowing"].choices[0].completion_tokens == 0:
            engine.step()
        engine.submit("long", "completion", {"prompt": "red green blue yellow " * 50, "max_tokens": 1})
        long_request = engine.running["long"]
        flowing = engine.running["flowing"].choices[0]
        steps = 0
        while long_request.fed < len(long_request.prompt):
            before = flowing.completion_tokens
            engine.step()
            steps += 1
            assert flowing.completion_tokens == before + 1  # one token every step, prefill or not
        assert steps >= len(long_request.prompt) // 32
        engine.cancel("flowing")
        run(engine)
    finally:
        engine.n_batch = 512


def test_reusing_a_cached_prompt_prefix_does_not_change_the_answer(exact):
    engine = exact  # not test-tiny: the module's docstring
    engine.forget()
    engine.submit("fresh", "chat", chat(CONTEXT + "Name a mountain.", max_tokens=16))
    assert engine.running["fresh"].fed == 0
    run(engine)
    engine.submit("reused", "chat", chat(CONTEXT + "Name a mountain.", max_tokens=16))
    request = engine.running["reused"]
    # All but the last block of the prompt (one message: one canonical part) came from the
    # cache: its last chunk must be as long as when it was computed cold (prefixes.py).
    assert request.fed == len(request.prompt) - BLOCK > 0
    run(engine)
    assert engine.recorder.text("reused") == engine.recorder.text("fresh")


def test_two_conversations_taking_turns_both_keep_their_cache(engine):
    """Prompts that share only the chat template's preamble must not evict each other while a
    sequence is free: each turn of either conversation finds its own prompt cached."""
    engine.forget()
    engine.free_seqs = list(range(engine.parallel))
    turns = [CONTEXT + "Name a mountain.", CONTEXT + "Which planet is red?"] * 2
    reused = []
    for number, content in enumerate(turns):
        engine.submit(f"turn{number}", "chat", chat(content, max_tokens=4))
        request = engine.running[f"turn{number}"]
        reused.append((request.reused, len(request.prompt)))
        run(engine)
    (first, _), (second, _), (third, third_len), (fourth, fourth_len) = reused
    assert first == 0  # the second one took the empty sequence (with a copy of the common context)
    assert third == third_len - BLOCK and fourth == fourth_len - BLOCK
    usage = [e for e in engine.recorder.events if e["id"] == "turn3" and e["event"] == "usage"][0]
    assert usage["cached_tokens"] == fourth


def test_max_tokens_zero_only_echoes_the_prompt_and_ends_with_length(engine):
    engine.submit("zero", "completion", {"prompt": "Once upon a time", "temperature": 0, "max_tokens": 0, "echo": True})
    run(engine)
    events = [e for e in engine.recorder.events if e["id"] == "zero"]
    assert next(e["text"] for e in events if e["event"] == "echo") == "Once upon a time"
    assert engine.recorder.text("zero") == "" and engine.recorder.finish_reason("zero") == "length"
    assert next(e for e in events if e["event"] == "usage")["completion_tokens"] == 0


def test_steady_decoding_reuses_the_compute_graph_whatever_order_the_sequences_were_taken(engine):
    """llama.cpp rebuilds the compute graph of a step unless the batch is in the previous
    step's sequence order; requests that come one after another hold their sequence ids in
    any order. Rebuilt every step, 8 streams decoded at 0.64x the in-process ceiling."""
    import llama_cpp

    def graphs_reused() -> int:
        return llama_cpp.llama_perf_context(engine.ctx).n_reused

    engine.free_seqs.sort(reverse=True)  # the first request takes the higher id
    engine.submit("first", "chat", chat("Write a long story about a lighthouse keeper.", max_tokens=40))
    engine.submit("second", "chat", chat("List every month of the year with its weather.", max_tokens=40))
    assert [request.choices[0].seq_id for request in engine.running.values()] == [1, 0]
    # The prompts (their first tokens come from the prompts' logits), then a decode of both
    # streams, which builds the graph. Prompts are paced by the time their chunks take
    # (scheduler.py): on loaded cores they may take more steps than one.
    while min(request.choices[0].completion_tokens for request in engine.running.values()) < 2:
        engine.step()
    before = graphs_reused()
    for _ in range(10):
        engine.step()
    assert len(engine.running) == 2  # still the same shape of batch: both streams generating
    assert graphs_reused() - before == 10
    run(engine)


@pytest.fixture(scope="module")
def pool_engine():
    """Two sequences sharing a pool of 512 cells, each as long as 512 (issue #49). Its tests
    count cells, not words (test-tiny, as every engine here but the default pool's)."""
    engine = recording_engine({"path": str(tiny_gguf()), "n_ctx": 512, "kv_size": 512, "kv_shared": True, "parallel": 2, "n_threads": 1})
    yield engine
    engine.close()


def test_a_request_whose_room_does_not_fit_beside_the_running_one_waits_for_the_pool(pool_engine):
    engine = pool_engine
    engine.submit("first", "chat", chat("Write a long story about a lighthouse.", max_tokens=300))
    engine.submit("second", "chat", chat("Write a long story about a forest.", max_tokens=300))
    # A sequence is free, but the pool is not: 2 x (prompt + 300) > 512.
    assert list(engine.running) == ["first"] and [request.rid for request in engine.waiting] == ["second"]
    assert len(engine.free_seqs) == 1
    most = 0
    while engine.busy:
        engine.step()
        most = max(most, engine.stats()["kv_used"])
    assert most <= engine.pool  # what idle sequences kept was dropped to make room
    for rid in ("first", "second"):
        assert any(e["id"] == rid and e["event"] == "usage" for e in engine.recorder.events)


def test_max_tokens_beyond_the_window_is_fitted_to_the_room_left_or_refused(pool_engine):
    engine = pool_engine
    engine.submit("fitted", "chat", chat("Hi", max_tokens=32000))
    request = engine.running["fitted"]
    assert request.max_tokens == engine.n_ctx - len(request.prompt) and request.reserve == engine.n_ctx
    engine.cancel("fitted")
    with pytest.raises(RequestError) as raised:
        engine.submit("refused", "chat", chat("Hi", max_tokens=32000, refuse_beyond_context=True, max_tokens_param="max_completion_tokens"))
    assert (raised.value.status, raised.value.param) == (400, "max_completion_tokens")
    assert raised.value.message.startswith("max_completion_tokens is too large: 32000. This model supports at most 512")


def endless(engine: Engine) -> dict:
    """Sampling that never ends an answer by itself: the end-of-generation tokens biased out."""
    vocab = engine.tokenizer
    return {"logit_bias": {str(token): -100 for token in range(vocab.n_vocab) if vocab.is_eog(token)}}


def test_eight_chats_without_max_tokens_decode_together_in_the_default_pool():
    """The packaged model with its pool shared (its 8,192-token window, 8 sequences, a pool of 16,384):
    a request without max_tokens (most SDKs' and chat UIs') reserves a share of the pool, not
    the rest of its window, so 8 decode at once; reserving the window, 2 did."""
    recorder = Recorder()
    engine = Engine({"path": str(default_gguf()), "kv_shared": True, "parallel": 8, "n_threads": 1}, recorder)
    try:
        assert (engine.n_ctx, engine.pool) == (8192, 16384)
        for number in range(8):
            engine.submit(f"chat{number}", "chat", chat(f"Tell me about the number {number}."))
        assert engine.stats()["decoding"] == 8 and not engine.waiting
        for _ in range(3):
            engine.step()
        assert all(request.choices[0].completion_tokens > 0 for request in engine.running.values())
        assert engine.stats()["decoding"] == 8
    finally:
        for number in range(8):
            engine.cancel(f"chat{number}")
        engine.close()


@pytest.fixture(scope="module")
def squeezed_engine():
    """Three sequences as long as 512 sharing 768 cells: a share of 256 each (test-tiny, as
    ``pool_engine``)."""
    engine = recording_engine({"path": str(tiny_gguf()), "n_ctx": 512, "kv_size": 768, "kv_shared": True, "parallel": 3, "n_threads": 1})
    yield engine
    engine.close()


def test_answers_without_max_tokens_grow_past_their_share_and_the_newest_ends_when_the_pool_runs_out(squeezed_engine):
    """Two endless answers without max_tokens run together, each past its share (256) while
    cells are free; when the pool runs out, the one admitted last ends with ``length`` and the
    older one goes on to its window: no decode fails. Reserving the window, the second waited."""
    engine = squeezed_engine
    params = {"prompt": "Once upon a time, in a lighthouse by the sea,", "temperature": 0, **endless(engine)}
    engine.submit("older", "completion", params)
    for _ in range(4):
        engine.step()
    engine.submit("newer", "completion", params)
    assert list(engine.running) == ["older", "newer"]
    most_decoding = most_used = 0
    while engine.busy:
        engine.step()
        stats = engine.stats()
        most_decoding, most_used = max(most_decoding, stats["decoding"]), max(most_used, stats["kv_used"])
    events = engine.recorder.events
    assert not any(e["event"] == "error" for e in events)
    usage = {rid: next(e for e in events if e["id"] == rid and e["event"] == "usage") for rid in ("older", "newer")}
    total = {rid: u["prompt_tokens"] + u["completion_tokens"] for rid, u in usage.items()}
    assert engine.recorder.finish_reason("older") == engine.recorder.finish_reason("newer") == "length"
    assert total["older"] == engine.n_ctx  # its window
    share = engine.pool // engine.parallel
    assert share < total["newer"] < engine.n_ctx  # past its share, then cut for want of cells
    assert most_decoding == 2 and most_used <= engine.pool and engine.stats()["pool_stops"] == 1


def test_a_request_with_max_tokens_keeps_its_reservation_beside_one_growing_past_its_share(pool_engine):
    """Two sequences sharing 512 cells (a share of 256): an endless answer without max_tokens
    grows past its share into free cells; a request with max_tokens admitted beside it gets all
    of them, and the one past its share is the one that ends when the pool runs out."""
    engine = pool_engine
    engine.submit("growing", "completion", {"prompt": "Once upon a time, by the sea,", "temperature": 0, **endless(engine)})
    while engine.running["growing"].choices[0].completion_tokens < 280:
        engine.step()
    bounded = {"prompt": "The ships came in at dusk,", "temperature": 0, "max_tokens": 150, **endless(engine)}
    engine.submit("bounded", "completion", bounded)
    assert list(engine.running) == ["growing", "bounded"]
    stops = engine.stats()["pool_stops"]
    run(engine)
    events = engine.recorder.events
    assert not any(e["event"] == "error" for e in events)
    usage = {rid: next(e for e in events if e["id"] == rid and e["event"] == "usage") for rid in ("growing", "bounded")}
    assert usage["bounded"]["completion_tokens"] == 150 and engine.recorder.finish_reason("bounded") == "length"
    grown = usage["growing"]["prompt_tokens"] + usage["growing"]["completion_tokens"]
    assert engine.pool // engine.parallel < grown < engine.n_ctx and engine.recorder.finish_reason("growing") == "length"
    assert engine.stats()["pool_stops"] == stops + 1


# Two phrases of as many tokens: requests made of either take the same cells.
PHRASES = ("the cat sat on a mat while rain fell over the hills ", "a dog ran in the park when snow came down the roads ")


def _answers_among(phrase: str) -> dict[str, list]:
    """The answers (tokens and logprobs) of four chats in a shared pool whose other requests
    are made of ``phrase``: a history of requests that used and freed cells first, and one
    decoding beside the four."""
    recorder = Recorder()
    engine = Engine({"path": str(tiny_gguf()), "n_ctx": 512, "kv_shared": True, "parallel": 6, "n_threads": 1}, recorder)
    try:
        forever = endless(engine)
        for round_ in range(2):
            for number in range(3):
                engine.submit(f"history{round_}{number}", "chat", chat(phrase * (number + 1), max_tokens=5 + 7 * number, **forever))
            run(engine)
        engine.submit("beside", "chat", chat(phrase * 3, max_tokens=30, **forever))
        engine.step()
        questions = ["Tell me about cats.", "What is 2+2?", "Name three colours.", "Describe a tree."]
        for number, question in enumerate(questions):
            engine.submit(f"q{number}", "chat", chat(question, max_tokens=12, logprobs=True, top_logprobs=2, **forever))
        run(engine)
        asked = [f"q{number}" for number in range(len(questions))]
        return {rid: [event["logprobs"] for event in recorder.events if event["id"] == rid and event["event"] == "delta"] for rid in asked}
    finally:
        engine.close()


def test_a_shared_pools_answers_never_depend_on_what_the_other_sequences_hold(engine):
    """In the shared pool, where a sequence's cells lie may move its last bits (on SmolLM2 a
    token's logprob moved by up to 0.19 nats between pool histories, in-process, 2026-11-28,
    and a near tie flipped). What the other sequences hold, or held in the cells they freed,
    must never move them: four chats among requests of other words (as many tokens, so the
    same cells taken and freed) give the same bits, token and logprob. A sequence that read
    another's cells, or stale ones, would not: the mix-up a shared pool risks, tenants apart."""
    assert len({len(engine.tokenizer.tokenize(phrase, add_bos=False)) for phrase in PHRASES}) == 1
    first, second = (_answers_among(phrase) for phrase in PHRASES)
    assert all(first.values()) and first == second
