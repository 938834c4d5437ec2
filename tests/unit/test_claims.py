"""What an answer shows (``serving/claims.py``): read as its parser's events come, the same
ids and kinds in the same order as read whole and walked, whatever its shape (with a key
twice, the same ids: its last value counts, as ``json.loads`` keeps it), in memory that
follows its depth, not its values. A fresh seed each run, printed for replay."""

from __future__ import annotations

import json
import random
import tracemalloc

import pytest

from llm_backend.serving.claims import claims, claims_of_text

KEYS = ["object", "id", "file_id", "output_file", "vector_store_ids", "training_files", "fine_tuned_model", "name", "data", "x"]


def _value(rng: random.Random, depth: int) -> str:
    """JSON text of a random value (objects as member lists, so a key may come twice)."""
    kind = rng.randrange(7 if depth < 4 else 3)
    if kind == 0:
        return json.dumps(rng.choice(["file-1", "list", "file", "batch_2", "vs_3", "", "ft:m:o::x"]))
    if kind == 1:
        return rng.choice(["0", "1.5", "-2e3", "true", "null"])
    if kind == 2:
        return json.dumps(rng.choice(["file", "response", "list", "vector_store"]))
    if kind in (3, 4):
        return "[" + ",".join(_value(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    members = [f"{json.dumps(rng.choice(KEYS))}:{_value(rng, depth + 1)}" for _ in range(rng.randint(0, 6))]
    return "{" + ",".join(members) + "}"


@pytest.mark.parametrize("objects", [True, False], ids=["objects", "named-only"])
def test_read_as_parsed_or_whole_an_answer_shows_the_same_ids_in_the_same_order(objects):
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")  # replay: random.Random(seed)
    rng = random.Random(seed)
    for _ in range(2000):
        text = _value(rng, 0)
        whole, repeated = claims(json.loads(text), {}, objects), []
        json.loads(text, object_pairs_hook=lambda pairs: repeated.append(len({key for key, _ in pairs}) < len(pairs)))
        streamed = claims_of_text(text.encode(), objects)
        if any(repeated):
            # A key twice, first with a plain value, then with an object: read whole, what that
            # object shows comes where the key first stood; read as parsed, where it comes.
            assert set(streamed) == set(whole), (seed, text)
        else:
            assert list(streamed.items()) == list(whole.items()), (seed, text)


def test_an_answer_that_is_not_json_is_a_value_error():
    with pytest.raises(ValueError):
        claims_of_text(b'{"id": "file-1", "object": "file"')


def test_an_answer_of_many_values_is_read_in_memory_of_its_depth():
    logprob = {"token": "a", "logprob": -0.5, "bytes": [97]}
    answer = {"id": "resp_1", "object": "response", "output": [{"logprobs": [{**logprob, "top_logprobs": [logprob] * 20}] * 3_000}]}
    text = json.dumps(answer).encode()  # half a million values
    tracemalloc.start()
    try:
        assert claims_of_text(text) == {"resp_1": "response"}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak  # the parser's buffers (1.2 MB, for 3.4 million values too); read whole: 22 MB (150)
