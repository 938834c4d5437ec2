"""Our alias in place of an upstream's model id (``backends/upstream/renaming.py``): in place
where the object opens with scalar members up to the field, read and written whole
otherwise, and the same answer either way, whatever the key order and the strings' escapes."""

from __future__ import annotations

import json
import random

from llm_backend.backends.upstream.renaming import events_with_model, with_model

ALIAS = "here-gpt-x"


def _expected(payload: bytes, field: str = "model") -> object:
    value = json.loads(payload)
    if isinstance(value, dict) and field in value:
        value[field] = ALIAS
    return value


def test_a_chunk_is_renamed_in_place_and_its_strings_are_left_as_they_came():
    content = 'say \\"model\\": \\"gpt-x\\" \\u00e9\\n'  # escapes kept as the upstream wrote them
    chunk = f'data: {{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": [{{"delta": {{"content": "{content}"}}}}]}}\n\n'
    renamed = events_with_model(chunk.encode(), ALIAS)
    assert renamed == chunk.replace('"model": "gpt-x"', f'"model": "{ALIAS}"').encode()


def test_events_without_a_top_level_model_are_handed_back_as_they_are():
    events = b'event: response.created\ndata: {"type": "response.created", "response": {"model": "gpt-x"}}\n\ndata: [DONE]\n\n'
    assert events_with_model(events, ALIAS) is events


def test_a_model_after_a_nested_value_is_renamed_by_reading_the_object_whole():
    events = b'data: {"choices": [{"delta": {"model": "inner"}}], "model": "gpt-x"}\n\n'
    [line] = [line for line in events_with_model(events, ALIAS).split(b"\n") if line]
    assert json.loads(line[len(b"data: "):]) == {"choices": [{"delta": {"model": "inner"}}], "model": ALIAS}


def test_an_embeddings_answer_is_renamed_in_place_from_its_end():
    vectors = ",".join('{"object":"embedding","index":%d,"embedding":[0.5,-1e-3]}' % i for i in range(3))
    answer = '{"object":"list","data":[%s],"model":"gpt-x","usage":{"prompt_tokens":2,"total_tokens":2}}' % vectors
    assert with_model(answer.encode(), "model", ALIAS) == answer.replace('"gpt-x"', f'"{ALIAS}"').encode()
    nested = b'{"data": [{"model": "gpt-x"}], "usage": {"model": "gpt-x"}}'  # no model of its own
    assert with_model(nested, "model", ALIAS) == nested


def test_a_model_list_entry_is_renamed_by_its_id():
    assert json.loads(with_model(b'{"id": "gpt-x", "object": "model", "owned_by": "lab"}', "id", ALIAS))["id"] == ALIAS
    assert with_model(b"not json", "id", ALIAS) == b"not json"


def _random_string(rng: random.Random) -> str:
    return "".join(rng.choice(['"', "\\", "model", ":", "{", "}", "[", ",", " ", "é", "\n", "a", "\u2028"]) for _ in range(rng.randint(0, 12)))


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(6 if depth < 3 else 4)
    if kind == 0:
        return _random_string(rng)
    if kind == 1:
        return rng.choice([0, -1.5e3, 7, 3.25])
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return None
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_random_string(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def test_random_objects_renamed_mean_what_reading_them_whole_would():
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")  # replay: random.Random(seed)
    rng = random.Random(seed)
    for _ in range(500):
        members = {_random_string(rng): _random_value(rng) for _ in range(rng.randint(0, 5))}
        if rng.random() < 0.8:
            members["model"] = rng.choice(["gpt-x", None, 3, {"nested": "gpt-x"}, ["gpt-x"]])
        keys = list(members)
        rng.shuffle(keys)
        obj = {key: members[key] for key in keys}
        spacing = rng.choice([(",", ":"), (", ", ": ")])
        payload = json.dumps(obj, separators=spacing, ensure_ascii=rng.random() < 0.5).encode()
        events = b"data: " + payload + b"\n\n" + (b"data: [DONE]\n\n" if rng.random() < 0.5 else b"")
        lines = [line for line in events_with_model(events, ALIAS).split(b"\n") if line.startswith(b"data:")]
        assert json.loads(lines[0][5:]) == _expected(payload), (seed, payload)
        assert json.loads(with_model(payload, "model", ALIAS)) == _expected(payload), (seed, payload)
