"""The thinking budget kept by the engine, on the real default GGUF given a reasoning
family's real chat template (DeepSeek-R1-Distill's, which opens ``<think>`` in the prompt):
past the budget the next tokens are the closing text, whatever the model would have
sampled, and the prompt event says the answer starts inside the block. (SmolLM2 does not
reason: what it writes inside the block is not reasoning, but the engine's rule is the
same for any model.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.engines import recording_engine, run
from tests.support.models import default_gguf

DEEPSEEK = Path(__file__).resolve().parents[1] / "fixtures" / "chat_templates" / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"


@pytest.fixture(scope="module")
def engine():
    config = {"path": str(default_gguf()), "n_ctx": 512, "parallel": 1, "n_threads": 1, "chat_template": DEEPSEEK.read_text()}
    engine = recording_engine(config)
    yield engine
    engine.close()


def ask(engine, rid: str, **params) -> str:
    engine.submit(rid, "chat", {"messages": [{"role": "user", "content": "What is 2+3?"}], "temperature": 0, "max_tokens": 24, **params})
    run(engine)
    return engine.recorder.text(rid)


def test_the_family_is_known_and_the_answer_starts_inside_the_block(engine):
    assert engine.template.reasoning.name == "deepseek-r1"
    ask(engine, "open")
    (prompt,) = [e for e in engine.recorder.events if e["id"] == "open" and e["event"] == "prompt"]
    assert prompt["reasoning_start"] == "open"


def test_a_budget_of_zero_closes_the_block_at_once(engine):
    assert ask(engine, "zero", thinking_budget=0).startswith("\n</think>\n\n")


def test_past_its_budget_the_block_is_closed_after_that_many_tokens(engine):
    free = ask(engine, "free")
    bounded = ask(engine, "three", thinking_budget=3)
    head = bounded.split("\n</think>\n\n")[0]
    assert "\n</think>\n\n" in bounded and free.startswith(head) and "</think>" not in free
    # The model's own three tokens, then the closing text (the deltas say their tokens).
    seen, tokens = "", 0
    for event in (e for e in engine.recorder.events if e["id"] == "three" and e["event"] == "delta"):
        if len(seen) >= len(head):
            break
        seen, tokens = seen + event["text"], tokens + event["tokens"]
    assert tokens == 3


def test_a_grammar_keeps_its_tokens_no_budget_applies(engine):
    assert ask(engine, "g", thinking_budget=0, grammar='root ::= "yes" | "no"') in ("yes", "no")
