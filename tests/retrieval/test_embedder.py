"""The embedding model: real all-MiniLM-L6-v2 from its PyPI package, on llama.cpp."""

from __future__ import annotations

import numpy as np

from llm_backend.backends.embedding import model_files
from tests.support.embedding import shared_embedder

PARAPHRASES = [
    ("A man is eating food.", "A man is eating a piece of bread."),
    ("How do I reset my password?", "I forgot my login credentials and need to change them."),
    ("The cat sat on the mat.", "A kitten was resting on the rug."),
]


def test_paraphrases_are_closer_than_unrelated_sentences():
    vectors = shared_embedder().embed([text for pair in PARAPHRASES for text in pair]).reshape(3, 2, -1)
    for i in range(3):
        paraphrase = float(vectors[i, 0] @ vectors[i, 1])
        unrelated = max(float(vectors[i, 0] @ vectors[j, 1]) for j in range(3) if j != i)
        assert paraphrase > unrelated + 0.3


def test_vectors_are_l2_normalised_float32_of_the_model_dimension():
    vectors = shared_embedder().embed(["one", "two words", "three little words"])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_batch_embeds_each_text_as_it_would_alone():
    embedder = shared_embedder()
    texts = ["Rivers flow to the sea.", "The treaty was signed in 1648.", "x"]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([text]) for text in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_a_text_longer_than_the_model_window_is_embedded_whole():
    embedder = shared_embedder()
    head = "The harbour freezes every winter and ships wait outside. " * 30
    tail = "Quantum chromodynamics describes the strong interaction of quarks. " * 30
    assert embedder.count_tokens(head + tail) > 2 * embedder.max_tokens
    whole, first, second = embedder.embed([head + tail, head, tail])
    # Both halves count: the whole is close to each, not just to the first window.
    assert float(whole @ second) > 0.5 and float(whole @ first) > 0.5


def test_count_tokens_is_the_number_of_token_ids():
    embedder = shared_embedder()
    text = "Tokenization of unbelievably long words, e.g. antidisestablishmentarianism."
    tokens = embedder.tokenize(text)
    assert embedder.count_tokens(text) == len(tokens.ids) == len(tokens.offsets) > 10


def test_detokenize_gives_back_the_text_as_the_uncased_model_reads_it():
    embedder = shared_embedder()
    assert embedder.detokenize(embedder.tokenize("Hello World").ids) == "hello world"


def test_the_converted_model_is_built_once_and_reused(tmp_path):
    files = model_files.installed()
    first = model_files.gguf_path(files, tmp_path)
    built = first.stat().st_mtime_ns
    again = model_files.gguf_path(files, tmp_path)
    assert again == first and again.stat().st_mtime_ns == built
    assert not list(first.parent.glob(".*partial"))


def test_tokens_counted_in_slices_are_the_whole_texts_tokens():
    # Counted a slice at a time (issue #39: the whole encoding of 512 Ki characters held the
    # GIL for 0.9 s and 130 MB): cut after a whitespace, a slice counts as it would inside.
    import random

    from llm_backend.backends.embedding.embedder import COUNT_SLICE
    from tests.support.fuzz import SEED

    embedder = shared_embedder()
    rng = random.Random(SEED)
    words = ["harbour", "tide", "é", "unbelievably", "1648", ",", "!", "\n", "x" * 40, "日本語"]
    for _ in range(3):
        text = " ".join(rng.choice(words) for _ in range(COUNT_SLICE // 3))
        whole = len(embedder.tokenize(text).ids)
        assert embedder.count_tokens(text) == whole, SEED
        assert whole >= embedder.count_tokens(text, limit=100) > 100  # stopped soon after the limit
