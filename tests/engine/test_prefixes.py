"""Prefill once (issue #34): a prompt's beginning copied from another sequence, restored from
host memory, or waited for while another request computes it; never across tenants. The engine
driven directly, on ``synthetic://test-tiny-q4_1`` (1/26 of the default model's CPU a prompt
token, 4 KB of KV a token to its 22.5): the same architecture, vocabulary and chat template,
so the same prompts, chunks and cells; its random weights' flatter logits turn a bit that
reuse changed into another greedy token more readily than SmolLM2's. It has the default
model's types (Q4_1, Q8_0), whose CPU kernels give a row the same bits whatever rows are
computed with it, as prefixes.py measured, so an answer computed with reuse is compared with
one computed alone. ``test-tiny``'s (Q4_K, Q6_K) do not (measured: a short chunk cut in two,
logits moved by up to 0.09; a token decoded beside 3 others or more, by 7e-7)."""

from __future__ import annotations

import random

import pytest

from llm_backend.backends.llama.engine.batching import SHARE_MIN, Engine
from llm_backend.backends.llama.engine.prefixes import BLOCK, common_prefix
from tests.support.engines import recording_engine, run
from tests.support.models import tiny_gguf

SYSTEM = (
    "You are the reference desk of a small public library. Answer in one short sentence. "
    "The library opens at nine and closes at six, except on Sundays when it is closed. "
    "Members may borrow twelve books for three weeks and renew them twice online. "
) * 3


def engine_on(model) -> Engine:
    # One thread: in-process, llama.cpp's OpenMP threads spin with libgomp's default (the
    # workers get GOMP_SPINCOUNT), which collapses beside the other test processes.
    # Sequences with cells of their own (``kv_shared: false``): there reuse changes no bit of
    # an answer. In the shared pool (the default, issue #49) where a sequence's cells lie
    # depends on what the others left, which moves the last bits of attention by itself.
    config = {
        "path": str(model), "n_ctx": 1024, "parallel": 4, "n_threads": 1, "n_threads_batch": 1, "prefix_cache_mb": 64,
        "kv_shared": False,
    }
    return recording_engine(config)


@pytest.fixture(scope="module")
def engine():
    engine = engine_on(tiny_gguf("test-tiny-q4_1"))
    yield engine
    engine.close()


@pytest.fixture
def fresh(engine):
    engine.forget()
    engine.host.clear()
    engine.free_seqs = list(range(engine.parallel))
    return engine


def chat(question: str, system: str = SYSTEM, tenant: str = "a", **params) -> dict:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return {"messages": messages, "temperature": 0, "max_tokens": 12, "tenant": tenant, **params}


def usage(engine: Engine, rid: str) -> dict:
    return next(e for e in engine.recorder.events if e["id"] == rid and e["event"] == "usage")


def alone(engine: Engine, rid: str, params: dict) -> str:
    """The answer computed from nothing (every sequence and the host cache emptied first)."""
    engine.forget()
    engine.host.clear()
    engine.submit(rid, "chat", params)
    assert engine.running[rid].reused == 0
    run(engine)
    return engine.recorder.text(rid)


def test_common_prefix_agrees_with_counting_one_by_one():
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    for _ in range(500):
        a = [rng.randrange(4) for _ in range(rng.randrange(40))]
        b = a[: rng.randrange(len(a) + 1)] + [rng.randrange(4) for _ in range(rng.randrange(10))]
        limit = rng.randrange(50)
        naive = 0
        while naive < min(len(a), len(b), limit) and a[naive] == b[naive]:
            naive += 1
        assert common_prefix(a, b, limit) == naive, (a, b, limit)


def test_requests_arriving_together_compute_their_common_beginning_once(fresh):
    # On test-tiny-q4_1 (see the module's docstring): on test-tiny the answers decoded four at a time
    # and the copies cut into a short chunk give other logits than alone (its answers agree
    # only because no token flipped).
    questions = ["When do you open?", "Can I renew a book?", "Are you open on Sunday?", "How many books?"]
    for number, question in enumerate(questions):
        fresh.submit(f"together{number}", "chat", chat(question))
    requests = [fresh.running[f"together{number}"] for number in range(4)]
    assert requests[0].awaits is None and all(request.awaits is not None for request in requests[1:])
    run(fresh)
    cached = [usage(fresh, f"together{number}")["cached_tokens"] for number in range(4)]
    # Each took at least the whole first part (all but its question) computed once, by the first.
    assert min(request.split for request in requests) > 2 * BLOCK
    assert cached[0] == 0 and all(request.split <= n < len(request.prompt) for n, request in zip(cached[1:], requests[1:])), cached
    assert fresh.totals["copied_tokens"] == sum(cached)
    for number, question in enumerate(questions):
        assert fresh.recorder.text(f"together{number}") == alone(fresh, f"alone{number}", chat(question))


def test_another_tenant_takes_nothing_of_a_prefix_unless_both_declare_it_shared(fresh):
    fresh.submit("owner", "chat", chat("When do you open?", tenant="a"))
    run(fresh)
    fresh.submit("stranger", "chat", chat("When do you open?", tenant="b"))
    assert fresh.running["stranger"].reused == 0
    run(fresh)
    assert fresh.recorder.text("stranger") == fresh.recorder.text("owner")

    # Declared shared (the operator's system prompt): the system prompt's tokens, no more.
    fresh.submit("sharer", "chat", chat("When do you open?", tenant="c", shared_messages=1))
    run(fresh)
    fresh.submit("shared", "chat", chat("When do you open?", tenant="d", shared_messages=1))
    request = fresh.running["shared"]
    assert SHARE_MIN <= request.reused <= request.shared  # the system prompt, as far as exactness allows
    assert request.shared < len(request.prompt) - 12
    run(fresh)
    assert fresh.recorder.text("shared") == fresh.recorder.text("owner")
    # One side alone declaring it is not enough.
    fresh.submit("half", "chat", chat("When do you open?", tenant="e"))
    assert fresh.running["half"].reused == 0
    run(fresh)


def test_an_evicted_conversation_comes_back_from_host_memory_with_the_same_answer(fresh):
    # On SmolLM2 (the module's docstring): the answer restored and continued is compared
    # with the one computed alone.
    first = chat("Can I renew a book?", max_tokens=16)
    fresh.submit("turn1", "chat", first)
    run(fresh)
    answer = fresh.recorder.text("turn1")
    # Four other conversations (other system prompts) take every sequence.
    for number in range(fresh.parallel):
        fresh.submit(f"other{number}", "chat", chat("Hello?", system=f"You are assistant number {number}. " * 30, max_tokens=2))
    run(fresh)
    assert fresh.host.stats()["host_cache_entries"] >= 1
    second = dict(first, messages=first["messages"] + [
        {"role": "assistant", "content": answer}, {"role": "user", "content": "And how long for?"}
    ])
    fresh.submit("turn2", "chat", second)
    request = fresh.running["turn2"]
    assert request.reused >= len(fresh.running["turn2"].prompt) * 0.8
    assert fresh.totals["restored_tokens"] >= request.reused
    run(fresh)
    assert fresh.recorder.text("turn2") == alone(fresh, "turn2-alone", second)
    assert fresh.host.used <= fresh.host.budget


def test_the_host_cache_keeps_within_its_budget(fresh):
    budget = fresh.host.budget
    try:
        fresh.host.budget = 1400 << 10  # room for two of these prompts (~0.66 MB each)
        for number in range(8):
            fresh.submit(f"filler{number}", "chat", chat("Hi", system=f"Assistant {number}: " + SYSTEM, max_tokens=1))
            run(fresh)
        assert 0 < fresh.host.used <= fresh.host.budget
        # The later four took the 4 sequences: the first four were saved, and half of them went.
        assert len(fresh.host.entries) < 4
    finally:
        fresh.host.budget = budget


def test_a_saved_turn_gives_way_to_its_conversations_next_turn_and_a_restored_one_goes_first(fresh):
    """Issue #41: 16 conversations on 8 sequences, one later turn found 1 % of its prompt
    cached. A turn's saved KV ends in its answer as decoded; the next turn's prompt holds that
    answer re-tokenized from its text, often other tokens, so the next turn's save did not
    cover the first and both stayed; and a restored entry, held by a sequence again, counted
    as freshly used. Stale and doubled entries filled the budget until a waiting
    conversation's went. Now the next turn's save replaces it, and a restored one is the
    first to go."""
    fresh.submit("turn", "chat", chat("Can I renew a book?", max_tokens=8))
    run(fresh)
    seq = next(seq for seq, held in enumerate(fresh.held) if held.prompt_len)
    holding = fresh.held[seq]
    decoded = holding.copy()  # the turn as it was decoded
    retokenized = holding.copy()  # the next turn: the same prompt, the answer's tokens otherwise, a question
    retokenized.tokens = holding.tokens[: holding.prompt_len] + [t + 1 for t in holding.tokens[holding.prompt_len :]] + [7, 8, 9]
    fresh.host.save(fresh.ctx, seq, decoded)
    fresh.host.save(fresh.ctx, seq, retokenized)
    assert [saved.holding.tokens for saved in fresh.host.entries.values()] == [retokenized.tokens]
    # Another tenant's saved after it, then restored: of the two, it is the first to lose.
    other = holding.copy(2)
    other.tenant = "b"
    fresh.host.save(fresh.ctx, seq, other)
    key = list(fresh.host.entries)[-1]
    fresh.host.restore(fresh.ctx, key, seq)
    assert list(fresh.host.entries) == [key, next(k for k in fresh.host.entries if k != key)]


def test_another_tenants_prompts_do_not_flush_a_tenants_saved_prefix(fresh):
    # Issue #39: the host cache was one LRU for every tenant, so a tenant sending many long
    # prompts flushed another's saved conversation. The tenant holding the most gives way.
    budget = fresh.host.budget
    try:
        fresh.host.budget = 1400 << 10  # room for two of these prompts (~0.66 MB each)
        fresh.submit("bob", "chat", chat("Can I renew a book?", tenant="bob", max_tokens=4))
        run(fresh)
        for round in range(2):  # each round takes every sequence: what they held is saved
            for number in range(fresh.parallel):
                system = f"Assistant {round}.{number}: " + SYSTEM
                fresh.submit(f"alice{round}.{number}", "chat", chat("Hi", system=system, tenant="alice", max_tokens=1))
            run(fresh)
        tenants = [saved.holding.tenant for saved in fresh.host.entries.values()]
        assert "bob" in tenants, "alice's prompts flushed bob's saved prefix"
        assert "alice" in tenants and 0 < fresh.host.used <= fresh.host.budget
    finally:
        fresh.host.budget = budget


QUESTIONS = [
    "When do you open?", "Can I renew a book?", "Are you open on Sunday?", "How many books can I borrow?",
    "Do you have a printer?", "Where is the history section?", "Can children get a card?",
    "How long can I keep a book?", "Is there a late fee?", "Can I reserve a room?",
]


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def variant(number: int) -> dict:
    """Prompts sharing the system prompt, or only its beginning (the day differs): then the
    common beginning ends inside the first canonical part, where exactness must hold back."""
    question = QUESTIONS[number]
    return chat(question, system=SYSTEM + f" Today is {DAYS[number // 2]}." if number % 2 else SYSTEM)


def test_greedy_answers_are_the_same_computed_cold_copied_waited_for_or_restored(fresh):
    """Over many prompts: each answer computed from nothing, then with its beginning waited
    for and copied (all arriving together), then restored from host memory. All 10, 5
    sharing the whole system prompt and 5 only its beginning: more than the 4 sequences, so
    later ones push earlier ones to host memory.

    On test-tiny-q4_1, not test-tiny (the module's docstring): there a prompt waiting for
    another's first part copies it and the first tokens of the other's last message (the
    template's ``<|im_start|>user``), then computes the rest of its own in a chunk cut
    otherwise than cold, and prompt 6's answer changed from its first token. A copy cut 3
    tokens short of what it says it holds changes answers here (tried)."""
    numbers = range(len(QUESTIONS))
    cold = {number: alone(fresh, f"cold-{number}", variant(number)) for number in numbers}
    fresh.forget()
    for number in numbers:
        fresh.submit(f"together-{number}", "chat", variant(number))
    run(fresh)
    assert fresh.totals["copied_tokens"] > 0
    assert {number: fresh.recorder.text(f"together-{number}") for number in numbers} == cold

    # The sequences given to later prompts were saved to host memory: empty every sequence
    # before each prompt, and it starts from what was saved (its own, or its system prompt).
    for number in numbers:
        fresh.forget()
        restored = fresh.totals["restored_tokens"]
        fresh.submit(f"restored-{number}", "chat", variant(number))
        assert fresh.running[f"restored-{number}"].reused >= BLOCK
        assert fresh.totals["restored_tokens"] > restored
        run(fresh)
        assert fresh.recorder.text(f"restored-{number}") == cold[number], QUESTIONS[number]


def resent(question: str, answer: str, follow_up: str) -> dict:
    """A later turn as an agent sends it: the last one, an answer in its own words, a new question."""
    params = chat(question)
    params["messages"] += [{"role": "assistant", "content": answer}, {"role": "user", "content": follow_up}]
    return params


def test_without_exact_reuse_a_later_turn_computes_only_its_new_tokens(fresh):
    """The model's ``exact_reuse: false`` (agents): the whole last prompt is reused, though its
    question was computed in a short chunk and now lies in the first part; with it (the
    default), at least a block before the new part is computed again, which keeps the bits."""
    later = resent("When do you open?", "Nine, every day but Sunday.", "And until when?")
    fresh.submit("first", "chat", chat("When do you open?", max_tokens=3))
    run(fresh)
    first = usage(fresh, "first")["prompt_tokens"]
    fresh.submit("exact", "chat", later)
    exact = fresh.running["exact"]
    assert fresh.exact_reuse and exact.reused < first - 1  # cut back into the question
    assert len(exact.prompt) - exact.reused >= BLOCK
    run(fresh)

    fresh.forget()
    fresh.submit("first again", "chat", chat("When do you open?", max_tokens=3))
    run(fresh)
    fresh.exact_reuse = False
    try:
        fresh.submit("inexact", "chat", later)
        inexact = fresh.running["inexact"]
        assert not fresh.exact_reuse
        assert inexact.reused >= first  # the whole last prompt, and what of its answer matches
        assert len(inexact.prompt) - inexact.reused < BLOCK
        run(fresh)
        assert usage(fresh, "inexact")["cached_tokens"] == inexact.reused
        assert fresh.recorder.finish_reason("inexact") is not None
    finally:
        fresh.exact_reuse = True
