"""The order of a step (issue #57): the overlapped one, which sends a decode's tokens while the
next decode computes (a GPU's), run here on the CPU, where the plain order is the default: the
same answers, bit for bit, as the plain order and as llama.cpp in-process, and a stop string
costs at most one row. On the real default GGUF, the engine driven directly."""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp
import pytest

from llm_backend.backends.llama.engine.batching import Engine
from tests.support.engines import recording_engine, run
from tests.support.models import default_gguf, llama_in_process

# A reasoning family's template (DeepSeek-R1-Distill's), so a thinking budget applies too.
DEEPSEEK = Path(__file__).resolve().parents[1] / "fixtures" / "chat_templates" / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"


def engine_with(overlap: bool, **config) -> Engine:
    settings = {"path": str(default_gguf()), "n_ctx": 512, "parallel": 4, "n_threads": 1, "overlap": overlap, **config}
    engine = recording_engine(settings)
    # Drafts are sized by the decode times the executor measures (drafts.py): two engines on
    # loaded cores measured otherwise, drafted otherwise, and sent a prediction's text in
    # other pieces (CI, stop 64). Unmeasured, both size them by the same defaults: what is
    # compared is the order of a step, not the cores' load.
    engine.executor.costs = None
    assert engine.overlap is overlap
    return engine


@pytest.fixture
def engines():
    made: list[Engine] = []

    def make(overlap: bool, **config) -> Engine:
        made.append(engine_with(overlap, **config))
        return made[-1]

    yield make
    for engine in made:
        engine.close()


def chat(content: str, **params) -> dict:
    return {"messages": [{"role": "user", "content": content}], "temperature": 0, **params}


# Every kind of ending and of output, more choices than sequences (requests wait, then take
# the sequences others free), submitted together: stop strings mid-batch, the end of
# generation, the length, n > 1 with seeded sampling and logprobs, echo with the prompt's
# logprobs, max_tokens 0, a thinking budget, drafts from a prediction.
REQUESTS = {
    "stop": ("chat", chat("Describe a lighthouse in two sentences.", max_tokens=40, stop=["."])),
    "two": ("chat", chat("List three fruits.", n=2, temperature=0.9, seed=3, max_tokens=24, stop=[","], logprobs=True, top_logprobs=2)),
    "echo": ("completion", {"prompt": "Once upon a time", "temperature": 0, "max_tokens": 8, "echo": True, "logprobs": 1}),
    "zero": ("completion", {"prompt": "Nothing more", "max_tokens": 0, "echo": True}),
    "think": ("chat", chat("What is 2+3?", max_tokens=24, thinking_budget=3)),
    "long": ("chat", chat("Write a long story about a forest.", max_tokens=30)),
    "hi": ("chat", chat("Say hi.", max_tokens=64)),
    "predicted": ("chat", chat("Repeat: the cat sat on the mat.", max_tokens=24, prediction="The cat sat on the mat.", stop=["mat"])),
}


def answers(engine: Engine) -> dict[str, list[dict]]:
    for rid, (op, params) in REQUESTS.items():
        engine.submit(rid, op, params)
    run(engine)
    return {rid: [event for event in engine.recorder.events if event["id"] == rid] for rid in REQUESTS}


def test_the_overlapped_order_sends_the_same_events_as_the_plain_one(engines):
    plain = answers(engines(False, chat_template=DEEPSEEK.read_text()))
    overlapped = answers(engines(True, chat_template=DEEPSEEK.read_text()))
    assert overlapped == plain
    finishes = {rid: [e.get("finish_reason") for e in events if e.get("finish_reason")] for rid, events in plain.items()}
    assert finishes["stop"] == ["stop"] and finishes["long"] == ["length"] and len(finishes["two"]) == 2


def test_in_the_overlapped_order_a_token_is_sent_while_the_next_decode_computes(engines):
    """The first delta of a lone stream: after its prompt's decode (plain), or after the
    decode of the next token was launched (overlapped)."""
    sent_after = {}
    for overlap in (False, True):
        engine = engines(overlap, parallel=1)
        decodes_at_delta = []
        engine.answers.emit = lambda event: decodes_at_delta.append(engine.executor.decodes) if event["event"] == "delta" else None
        engine.submit("one", "chat", chat("Write a long story about a forest.", max_tokens=6))
        run(engine)
        sent_after[overlap] = decodes_at_delta[:5]
    assert sent_after[False] == [1, 2, 3, 4, 5] and sent_after[True] == [2, 3, 4, 5, 6]


def test_a_stop_string_costs_the_overlapped_order_at_most_one_row_and_leaves_the_kv_as_without_it(engines):
    stops = {f"s{number}": chat(f"Describe {thing} in one sentence.", max_tokens=40, stop=[".", ","])
             for number, thing in enumerate(["a lighthouse", "a forest", "the sea", "a market"])}
    runs = {}
    for overlap in (False, True):
        engine = engines(overlap, parallel=6)
        for rid, params in stops.items():
            engine.submit(rid, "chat", params)
        engine.submit("long", "chat", chat("Write a long story about a forest.", max_tokens=48))
        run(engine)
        runs[overlap] = engine
    plain, overlapped = runs[False], runs[True]
    ended_by_stop = sum(plain.recorder.finish_reason(rid) == "stop" for rid in stops)
    assert [plain.recorder.text(rid) for rid in stops] == [overlapped.recorder.text(rid) for rid in stops]
    assert 1 <= overlapped.executor.undone <= ended_by_stop and plain.executor.undone == 0
    assert overlapped.executor.rows == plain.executor.rows + overlapped.executor.undone
    assert overlapped.executor.decodes <= plain.executor.decodes + overlapped.executor.undone
    # The wasted rows' cells are gone: each sequence holds what it holds in the plain order.
    assert [held.tokens for held in overlapped.held] == [held.tokens for held in plain.held]


def llama_cpp_greedy(tokens: list[int], max_tokens: int) -> str:
    """llama.cpp itself, in-process: the prompt in one decode, then one token a decode."""
    text, piece = b"", ctypes.create_string_buffer(64)
    with llama_in_process(512, 1) as (model, context, batch, greedy):

        def decode(tokens: list[int], start: int) -> None:
            batch.n_tokens = len(tokens)
            for i, token in enumerate(tokens):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, start + i, 1, i == len(tokens) - 1
                batch.seq_id[i][0] = 0
            assert llama_cpp.llama_decode(context.ctx, batch) == 0

        decode(tokens, 0)
        for generated in range(max_tokens):
            token = llama_cpp.llama_sampler_sample(greedy, context.ctx, -1)
            if llama_cpp.llama_vocab_is_eog(model.vocab, token):
                break
            length = llama_cpp.llama_token_to_piece(model.vocab, token, piece, 64, 0, False)
            text += piece.raw[:length]
            decode([token], len(tokens) + generated)
    return text.decode("utf-8", errors="ignore")


def test_the_overlapped_order_answers_as_llama_cpp_in_process_beside_another_stream(engines):
    engine = engines(True, parallel=2)
    prompt = "The old lighthouse keeper climbed the stairs every evening, and"
    engine.submit("answer", "completion", {"prompt": prompt, "temperature": 0, "max_tokens": 40})
    engine.submit("beside", "chat", chat("Write a long story about a forest.", max_tokens=60))
    run(engine)
    tokens = engine.tokenizer.tokenize(prompt, add_bos=engine.add_bos)
    assert engine.recorder.text("answer") == llama_cpp_greedy(tokens, 40)
