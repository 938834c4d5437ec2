"""Predicted outputs in the engine (issue #41): a prediction's tokens verified as drafts
change no answer, only how many steps it takes. On the real default GGUF, driven directly."""

from __future__ import annotations

import collections
import random

import numpy as np
import pytest

from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.drafts import StepCosts
from llm_backend.backends.llama.engine.sampling import Sampler, SamplingParams
from tests.support.engines import recording_engine, run
from tests.support.fuzz import SEED
from tests.support.models import default_gguf

PROMPTS = [
    "Write a Python function that returns the squares of a list of numbers.",
    "List five rivers of Europe, one per line.",
    "Write a short poem about the sea.",
    "Explain in two sentences what a compiler does.",
    "Write a JSON object describing a book with a title, an author and a year.",
    "Give three tips for learning to cook.",
    "Write a Python class for a bank account with deposit and withdraw methods.",
    "Describe a sunrise over the mountains.",
]
MAX_TOKENS = 40


@pytest.fixture(scope="module")
def engine():
    engine = recording_engine({"path": str(default_gguf()), "n_ctx": 1024, "parallel": 2, "n_threads": 1})
    yield engine
    engine.close()


def chat(content: str, **params) -> dict:
    return {"messages": [{"role": "user", "content": content}], "temperature": 0, "max_tokens": MAX_TOKENS, **params}


def usage(engine: Engine, rid: str) -> dict:
    return next(e for e in engine.recorder.events if e["id"] == rid and e["event"] == "usage")


def prediction_tokens(engine: Engine, text: str) -> list[int]:
    """The prediction as the engine reads it (plain text, no special tokens)."""
    return engine.tokenizer.tokenize(text, add_bos=False, special=False)


def answer(engine: Engine, rid: str, params: dict) -> tuple[str, int]:
    """The answer's text and the decoding steps it took. Its drafts read the costs of 2 cores
    measured once (drafts.py's constants), not what this shared machine's load makes of its
    decodes now (the engine's timings): the steps it takes are the drafting's, not the load's."""
    engine.submit(rid, "chat", params)
    for request in [*engine.waiting, *engine.running.values()]:
        for choice in request.choices if request.rid == rid else []:
            if choice.draft is not None:
                choice.draft.costs = StepCosts()
    steps = 0
    while engine.busy:
        engine.step()
        steps += 1
    return engine.recorder.text(rid), steps


def edited(text: str) -> str:
    """The answer with a word in its middle changed: the prediction leaves it there."""
    words = text.split(" ")
    middle = len(words) // 2
    return " ".join(words[:middle] + ["zebra"] + words[middle + 1 :])


def test_greedy_answers_are_the_same_with_a_prediction_right_or_edited(engine):
    """Measured over these 8 prompts (40 tokens each), with the answer itself as the prediction
    and with one word of it changed: 16 of 16 answers identical to the plain ones (drafts are
    computed in multi-row chunks, a token alone in one row; these cores compute chunks under
    64 rows bitwise as rows alone: test_prediction_exactness.py). And the verified steps are
    fewer. A run
    takes 5 of them, drawn by its seed (every prompt is a few CPU-seconds of decoding on a
    suite that keeps both cores busy); the runs together cover them all."""
    identical, steps_plain, steps_predicted = 0, 0, 0
    drawn = random.Random(SEED).sample(range(len(PROMPTS)), 5)
    print("prompts", drawn, "of seed", SEED)
    for number in drawn:
        prompt = PROMPTS[number]
        plain, steps = answer(engine, f"plain-{number}", chat(prompt))
        for kind, predicted in (("right", plain), ("edited", edited(plain))):
            text, predicted_steps = answer(engine, f"{kind}-{number}", chat(prompt, prediction=predicted))
            identical += text == plain
            steps_plain += steps
            steps_predicted += predicted_steps
    assert identical == 2 * len(drawn)
    # Over all 8 the predicted answers took 0.56 of the plain steps; the 5 least helped of
    # them 0.70 (their answers hold more near ties, each a verification cut and decided alone,
    # so their drafts shrink and pause: drafts pay or stop, drafts.py): any draw stays under
    # 0.75, where no prediction at all would take every step (1.0). Drafting whatever it cost,
    # before issue #57, took 0.45 (0.54) of the steps with 2.8-3.3x the drafted rows: by the
    # 2-core costs (drafts.py), more one-row steps' work than plain decoding.
    assert steps_predicted < steps_plain * 0.75, (steps_predicted, steps_plain)


def test_usage_adds_up_accepted_rejected_and_generated(engine):
    plain, _ = answer(engine, "usage-plain", chat(PROMPTS[0]))
    _, _ = answer(engine, "usage-edited", chat(PROMPTS[0], prediction=edited(plain)))
    counts = usage(engine, "usage-edited")
    delta_tokens = usage(engine, "usage-plain")["completion_tokens"]
    accepted, rejected = counts["accepted_prediction_tokens"], counts["rejected_prediction_tokens"]
    assert accepted > delta_tokens / 2 and rejected > 0  # the edited word did not appear
    # OpenAI's: every token of the prediction is accepted (it appeared) or rejected.
    assert accepted + rejected == len(prediction_tokens(engine, edited(plain)))
    # The answer's own tokens (the same as without a prediction) plus the rejected ones.
    assert counts["completion_tokens"] == delta_tokens + rejected
    assert "accepted_prediction_tokens" not in usage(engine, "usage-plain")


def test_a_prediction_wrong_from_the_first_token_costs_few_rows(engine):
    plain, steps = answer(engine, "wrong-plain", chat(PROMPTS[2]))
    wrong = "import os\nimport sys\n\nfor name in sorted(os.listdir(sys.argv[1])):\n    print(name)\n" * 4
    drafted = engine.totals["drafted_tokens"]
    text, wrong_steps = answer(engine, "wrong", chat(PROMPTS[2], prediction=wrong))
    assert text == plain
    assert engine.totals["drafted_tokens"] - drafted <= 24
    assert wrong_steps >= steps - 1


def test_a_wrong_prediction_is_billed_as_rejected_tokens_whether_drafted_or_not(engine):
    """OpenAI bills the prediction's tokens that did not appear in the answer as completion
    tokens; a prediction wrong from its first token was billed nothing here (none of it was
    drafted past the first try, and only drafted tokens counted)."""
    plain, _ = answer(engine, "billed-plain", chat(PROMPTS[2]))
    wrong = "import os\nimport sys\n\nfor name in sorted(os.listdir(sys.argv[1])):\n    print(name)\n" * 4
    answer(engine, "billed-wrong", chat(PROMPTS[2], prediction=wrong))
    counts = usage(engine, "billed-wrong")
    assert counts["accepted_prediction_tokens"] == 0
    assert counts["rejected_prediction_tokens"] == len(prediction_tokens(engine, wrong))
    assert counts["completion_tokens"] == usage(engine, "billed-plain")["completion_tokens"] + counts["rejected_prediction_tokens"]


def test_a_stop_string_inside_a_verified_draft_ends_the_answer_there(engine):
    plain, _ = answer(engine, "stop-plain", chat(PROMPTS[1]))
    stop = plain.split("\n")[2][:6]
    cut, _ = answer(engine, "stop-cut", chat(PROMPTS[1], stop=[stop]))
    predicted, _ = answer(engine, "stop-predicted", chat(PROMPTS[1], stop=[stop], prediction=plain))
    assert predicted == cut and len(cut) < len(plain)
    assert engine.recorder.finish_reason("stop-predicted") == "stop"


def test_a_verifying_sampler_draws_from_the_same_distribution(engine):
    """Speculative sampling's rule with the draft as a point mass keeps the model's
    distribution: draws verified against a likely draft (taken with probability p, else from
    the rest) and plain draws, on the same logits, agree within sampling noise; accepting only
    the argmax would give the draft every time."""
    engine.submit("dist", "chat", chat("Name a colour.", max_tokens=1))
    run(engine)  # its last decode computed the prompt's last row: those logits stay until the next
    index = engine.batch.n_tokens - 1
    params = SamplingParams(temperature=1.0, top_k=12, seed=7)
    plain_sampler = Sampler(params, engine.model, engine.n_ctx, 0, drafts=True)
    verifier = Sampler(params, engine.model, engine.n_ctx, 1, drafts=True)
    draws = 2000
    plain = collections.Counter(plain_sampler.sample(engine.ctx, index) for _ in range(draws))
    draft = plain.most_common(1)[0][0]
    verified = collections.Counter(verifier.verify(engine.ctx, index, draft) for _ in range(draws))
    tokens = sorted(set(plain) | set(verified))
    p = np.array([plain[t] for t in tokens]) / draws
    q = np.array([verified[t] for t in tokens]) / draws
    assert 0.5 * np.abs(p - q).sum() < 0.06  # total variation: 2000 draws of 12 tokens
    assert verified[draft] / draws < 0.9
    plain_sampler.close()
    verifier.close()


def test_prompt_lookup_drafts_from_the_prompt_and_changes_no_answer(engine):
    """The model setting ``prompt_lookup``: an answer quoting its prompt is drafted from it
    (only that request's prompt), the same answer in fewer steps; usage says nothing of a
    prediction (there was none)."""
    code = "def area(width, height):\n    return width * height\n\n\ndef perimeter(width, height):\n    return 2 * (width + height)\n"
    params = chat("Repeat this code exactly:\n" + code)
    plain, steps = answer(engine, "lookup-off", params)
    engine.prompt_lookup = True
    try:
        drafted = engine.totals["drafted_tokens"]
        text, lookup_steps = answer(engine, "lookup-on", params)
    finally:
        engine.prompt_lookup = False
    assert text == plain
    assert engine.totals["drafted_tokens"] > drafted and lookup_steps < steps
    assert "accepted_prediction_tokens" not in usage(engine, "lookup-on")

