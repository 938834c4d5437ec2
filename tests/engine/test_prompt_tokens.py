"""A long prompt's tokens reused from a recent prompt of the same tenant (engine/prompt_tokens.py),
on the real default GGUF's vocabulary: always the tokens of tokenizing the whole text."""

from __future__ import annotations

import random

import llama_cpp
import pytest
from llama_cpp import _internals

from llm_backend.backends.llama.engine import prompt_tokens
from llm_backend.backends.llama.engine.prompt_tokens import MIN_CHARS, PromptTokens
from llm_backend.backends.llama.engine.prompts import Tokenizer
from tests.support.fuzz import SEED
from tests.support.models import default_gguf

# What an agent's prompts are made of, and what breaks a naive cut: special tokens' texts
# written inside a message, halves of them, spaces and newlines around them, multi-byte text.
PIECES = [
    "<|im_start|>", "<|im_end|>", "<|im_start|>user\n", "<|im_end|>\n", "<|endoftext|>", "<|im_", "start|>", "<", "|>",
    " ", "  ", "\n", "\n\n", "\t", "word", " word", "Word's", "don't", "123", " 4567", "é", "🙂", "日本語", "{\"cmd\": \"ls\"}",
    "def f(x):\n    return x\n",
]


@pytest.fixture(scope="module")
def tokenizer():
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    return Tokenizer(_internals.LlamaModel(path_model=str(default_gguf()), params=params, verbose=False))


def text(rng: random.Random, size: int) -> str:
    parts, length = [], 0
    while length < size:
        parts.append(rng.choice(PIECES))
        length += len(parts[-1])
    return "".join(parts)


def test_reused_tokens_are_the_whole_texts_tokens_through_a_conversation_and_its_edits(tokenizer):
    """Turns that grow a conversation, first parts of them, and edits at random points (inside
    a special token's text too): each prompt's tokens equal tokenizing it whole, and most of
    them were reused."""
    print("seed", SEED)
    rng = random.Random(SEED)
    reuse = PromptTokens(tokenizer)
    assert reuse.on and "<|im_start|>" in reuse.specials.values()
    conversation, total = text(rng, 2 * MIN_CHARS), 0
    for turn in range(40):
        if rng.random() < 0.25:  # an edit: the text after a random point is another
            conversation = conversation[: rng.randrange(MIN_CHARS, len(conversation))] + text(rng, 200)
        else:
            conversation += text(rng, rng.choice([20, 300, 2000]))
        for prompt in (conversation, conversation[: rng.randrange(MIN_CHARS, len(conversation) + 1)]):
            add_bos = rng.random() < 0.2
            whole = tokenizer.tokenize(prompt, add_bos)
            assert reuse.tokens(prompt, add_bos, "a") == whole, (SEED, turn)
            total += len(whole)
    assert reuse.on  # no check found a difference
    assert reuse.reused > total // 4  # most prompts took most of their tokens from an earlier one


def test_another_tenant_reuses_nothing_and_short_texts_are_tokenized_whole(tokenizer):
    reuse = PromptTokens(tokenizer)
    long = "<|im_start|>system\n" + "Keep the build green. " * 400 + "<|im_end|>\n"
    question = "<|im_start|>user\nWhich of the files in this folder is the largest one, "
    reuse.tokens(long + question + "and why?<|im_end|>\n", False, "a")
    reuse.tokens(long + question + "and how?<|im_end|>\n", False, "b")
    assert reuse.reused == 0
    reuse.tokens(long + question + "and when?<|im_end|>\n", False, "a")
    assert reuse.reused > 0
    short = "<|im_start|>user\nHi<|im_end|>\n"
    assert reuse.tokens(short, False, "a") == tokenizer.tokenize(short, False)
    assert not any(seen.text == short for entries in reuse.seen.values() for seen in entries)


def test_a_reuse_found_wrong_by_its_check_turns_reuse_off(tokenizer, monkeypatch):
    """A kept prompt's tokens damaged by hand (a fault no real tokenizer makes, so it is
    injected): the check tokenizes the whole text, answers that, and reuse stops."""
    monkeypatch.setattr(prompt_tokens, "CHECK_EVERY", 1)
    reuse = PromptTokens(tokenizer)
    long = "<|im_start|>system\n" + "Keep the build green. " * 400 + "<|im_end|>\n"
    question = "<|im_start|>user\nWhich of the files in this folder is the largest one, "
    reuse.tokens(long + question + "and why?<|im_end|>\n", False, "a")
    seen = reuse.seen[("a", False)][0]
    seen.tokens[5] = (seen.tokens[5] + 1) % tokenizer.n_vocab
    prompt = long + question + "and when?<|im_end|>\n"
    assert reuse.tokens(prompt, False, "a") == tokenizer.tokenize(prompt, False)
    assert not reuse.on


def test_what_is_kept_stays_within_its_bytes(tokenizer, monkeypatch):
    """Many tenants' long prompts, and one too long to keep: the prompts kept never hold more
    than ``KEEP_BYTES``, the least recently seen tenant's going first."""
    monkeypatch.setattr(prompt_tokens, "KEEP_BYTES", 1 << 20)
    reuse = PromptTokens(tokenizer)
    rng = random.Random(SEED)
    for number in range(40):
        # The last of a size that is kept (12 chunks of wide characters are not: an eighth of
        # KEEP_BYTES), so that it is the latest kept.
        sizes = [MIN_CHARS, 4 * MIN_CHARS, 12 * MIN_CHARS] if number < 39 else [MIN_CHARS]
        prompt = text(rng, rng.choice(sizes))
        reuse.tokens(prompt, False, f"tenant {number % 9}")
        assert reuse.bytes == sum(seen.size for entries in reuse.seen.values() for seen in entries) <= 1 << 20
        assert all(len(entries) <= 4 for entries in reuse.seen.values())
    huge = text(rng, 40 * MIN_CHARS)
    reuse.tokens(huge, False, "huge")
    assert ("huge", False) not in reuse.seen
    assert f"tenant {39 % 9}" in {tenant for tenant, _ in reuse.seen}  # the latest stays
