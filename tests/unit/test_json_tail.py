"""A member found from the end of a JSON text (``json/tail.py``): where OpenAI writes it last
it is found; and whatever is found is the member reading the text whole gives, never a
string's inside or a nested object's (``nested``: at most the one its object holds last). A
fresh seed each run, printed for replay."""

from __future__ import annotations

import json
import random

from llm_backend.json.tail import TAIL, Kept, last_member
from llm_backend.json.text import LARGE_BODY

USAGE = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11, "prompt_tokens_details": {"cached_tokens": 0}}


def test_the_usage_openai_writes_last_is_found():
    chat = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"message": {"content": "x" * 100_000}}],
            "usage": USAGE, "service_tier": "default", "system_fingerprint": None}
    embeddings = {"object": "list", "data": [{"embedding": [0.5] * 20_000}], "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}
    for answer in (chat, embeddings):
        found = last_member(json.dumps(answer).encode(), "usage")
        assert found is not None and json.loads(found.group(1)) == answer["usage"]
    completed = {"type": "response.completed", "response": {"id": "resp_1", "output": [], "usage": USAGE, "user": None, "metadata": {}}, "sequence_number": 9}
    text = json.dumps(completed).encode()
    assert last_member(text, "usage") is None  # not the event's own
    found = last_member(text, "usage", nested=True)
    assert found is not None and json.loads(found.group(1)) == USAGE


def test_a_member_inside_a_string_or_before_a_list_is_not_found():
    assert last_member(b'{"text": "a \\"usage\\": {\\"x\\": 1}}"}', "usage", nested=True) is None
    assert last_member(b'{"usage": {"x": 1}, "data": [1, 2]}', "usage", nested=True) is None
    assert last_member(b'{"a": {"usage": {"x": 1}}}', "usage") is None


def _text(rng: random.Random) -> str:
    pieces = ['"', "\\", "usage", ":", "{", "}", "[", ",", " ", "é"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))


def _value(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(5 if depth < 3 else 3)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return rng.choice([0, 1.5, None, True])
    if kind == 2:
        return {"x": rng.choice([1, "usage"]), "usage": rng.choice([2, None])}
    if kind == 3:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["usage", "a", _text(rng)]): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _flat(value: object, depth: int = 0) -> bool:
    """A scalar, or an object of scalars and (once) of such objects: what may follow the member."""
    if isinstance(value, dict):
        return depth < 2 and all(_flat(item, depth + 1) for item in value.values())
    return not isinstance(value, list)


def _trailing_usages(obj: dict) -> list:
    """The ``usage`` members that only flat members follow, up to the text's end: the root's,
    and those of an object member that only flat members follow in a trailing object."""
    found, members = [], list(obj.items())
    for index, (key, value) in enumerate(members):
        if all(_flat(after) for _, after in members[index + 1 :]):
            if key == "usage" and _flat(value):
                found.append(value)
            if isinstance(value, dict):
                found += _trailing_usages(value)
    return found


def test_what_is_found_is_what_reading_the_text_whole_gives():
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")  # replay: random.Random(seed)
    rng = random.Random(seed)
    found_any = 0
    for _ in range(3000):
        answer = _value(rng, 0)
        if not isinstance(answer, dict):
            continue
        text = json.dumps(answer, ensure_ascii=rng.random() < 0.5, separators=rng.choice([(",", ":"), (", ", ": ")])).encode()
        found = last_member(text, "usage")
        if found is not None:
            found_any += 1
            assert "usage" in answer and json.loads(found.group(1)) == answer["usage"], (seed, text)
        nested = last_member(text, "usage", nested=True)
        if nested is not None:
            assert json.loads(nested.group(1)) in _trailing_usages(answer), (seed, text)
    assert found_any  # the generator makes the shape it looks for


def test_the_meter_reads_a_long_events_usage_from_its_end():
    from llm_backend.http.metrics import _usage_in_events

    response = {"id": "resp_1", "object": "response", "output": [{"content": [{"text": "y" * 400_000}]}], "usage": USAGE, "metadata": {}}
    completed = {"type": "response.completed", "response": response, "sequence_number": 7}
    chunk = {"id": "c", "choices": [{"delta": {"content": "z" * 400_000}}], "usage": USAGE}
    for event in (completed, chunk):
        assert _usage_in_events(b"data: " + json.dumps(event).encode() + b"\n\n") == USAGE


def _kept(text: bytes, piece: int) -> Kept:
    kept = Kept()
    for start in range(0, len(text), piece):
        kept.extend(text[start : start + piece])
    return kept


def test_a_kept_answer_is_read_whole_while_short_and_from_its_end_when_long():
    """Short: read whole, so a usage anywhere in its object is found (and a nested one is
    not its own); long: only its last 64 KiB kept, the usage found there as OpenAI and
    Anthropic write it, last."""
    first = json.dumps({"usage": USAGE, "data": [{"usage": {"x": 1}}]}).encode()
    assert _kept(first, 7).member("usage") == USAGE
    assert _kept(b'{"data": [{"usage": {"x": 1}}]}', 5).member("usage") is None
    message = {"id": "msg_1", "content": [{"type": "text", "text": '"usage": {"output_tokens": 999}' * 100_000}],
               "stop_reason": "end_turn", "usage": {"input_tokens": 4, "output_tokens": 6}}
    text = json.dumps(message).encode()
    for piece in (1000, 65536, len(text)):
        kept = _kept(text, piece)
        assert kept.cut and len(kept.body) <= LARGE_BODY + TAIL and kept.member("usage") == message["usage"], piece
    assert _kept(json.dumps({"usage": USAGE, "data": "x" * (1 << 20)}).encode(), 65536).member("usage") is None  # not at its end


def test_a_kept_answer_that_does_not_read_has_no_member():
    """100,000 brackets made ``json.loads`` raise ``RecursionError``: the metrics of an
    upstream's answer failed the request's end (tests/hostile/test_upstream_reads.py)."""
    for text in (b"[" * 100_000 + b"]" * 100_000, b'{"usage": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"<html>", b'{"usage": {"a": 1}'):
        assert _kept(text, 4096).member("usage") is None
