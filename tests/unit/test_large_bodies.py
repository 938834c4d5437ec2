"""A large body costs the event loop nothing it could notice (issue #39): parsed a slice at
a time when it has many values, with the meaning ``json.loads`` gives it, and an invalid
one explained from its first bad item, not millions of errors."""

from __future__ import annotations

import json
import threading
import time

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.http.body import LARGE_BODY, MANY_VALUES, parse_json
from llm_backend.spec.validation import check_body
from tests.unit.test_unknown_fields import body_schema

MANY = max(MANY_VALUES + 1000, LARGE_BODY // 2 + 1000)  # values: a body parsed in slices


def large(*values: str) -> bytes:
    """A body above ``LARGE_BODY`` with ``MANY`` values, then ``values`` as raw JSON text."""
    body = '{"input": [' + ",".join(["0"] * MANY) + "]," + ",".join(f'"k{i}": {v}' for i, v in enumerate(values)) + "}"
    assert len(body) > LARGE_BODY
    return body.encode()


@pytest.mark.parametrize(
    "value",
    [
        '"\\ud83d\\ude00"',  # an escaped pair: an emoji
        '"\\ud800"',  # a lone escaped surrogate (ijson reads "?")
        "NaN",
        "1e400",
        "123456789012345678901234567890",  # past 64 bits
        '"\\u0000"',
        "1.5",
        "-0",
        '{"a": 1, "a": 2}',
    ],
)
def test_a_large_body_means_what_json_loads_makes_of_it(value):
    body = large(value)
    assert parse_json(body) == json.loads(body) or value == "NaN"
    if value == "NaN":
        assert parse_json(body)["k0"] != parse_json(body)["k0"]  # nan is nan, not refused


@pytest.mark.parametrize(
    "body",
    [
        large("1") + b" x",  # trailing garbage
        large("[1,]"),
        b"\xef\xbb\xbf" + large("1")[:-1] + b', "bad": "\xff"}',  # not UTF-8 inside
        large('"\x01"'),  # a raw control character
    ],
)
def test_a_large_body_json_loads_refuses_is_refused(body):
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(OpenAIError) as refused:
        parse_json(body)
    assert refused.value.status == 400


def test_a_large_body_of_many_values_lets_other_threads_run_while_it_is_parsed():
    # json.loads of such a body is one C call holding the GIL (0.25 s for the worst 8 MiB);
    # in slices, the loop's thread gets its turn within a few switch intervals. (Numbers:
    # millions of objects would add the garbage collector's pauses, another matter.)
    body = b"[" + b",".join([b"0"] * 1_500_000) + b"]"
    waits: list[float] = []
    done = threading.Event()

    def parse() -> None:
        parse_json(body)
        done.set()

    worker = threading.Thread(target=parse)
    worker.start()
    while not done.is_set():
        started = time.perf_counter()
        time.sleep(0.001)
        waits.append(time.perf_counter() - started)
    worker.join()
    assert len(waits) > 10 and max(waits) < 0.2, (len(waits), max(waits))


def test_an_invalid_item_among_millions_is_named_without_an_error_for_each():
    # The explaining validator once made one error per bad item, in every branch of the
    # input's anyOf, before choosing one: gigabytes for an 8 MiB body.
    items = [{}] * 300_000
    started = time.process_time()
    with pytest.raises(OpenAIError) as refused:
        check_body(body_schema("/embeddings"), {"model": "m", "input": items})
    assert refused.value.status == 400 and time.process_time() - started < 2


def test_the_first_bad_item_of_a_long_array_is_the_one_named():
    messages = [{"role": "user", "content": "hi"}] * 5000 + [{"role": "user", "content": 7}]
    with pytest.raises(OpenAIError) as refused:
        check_body(body_schema("/chat/completions"), {"model": "m", "messages": messages})
    assert refused.value.param.startswith("messages[5000]"), refused.value.param


@pytest.mark.parametrize("path", ["/chat/completions", "/responses", "/embeddings", "/moderations", "/conversations", "/vector_stores"])
def test_a_large_body_is_judged_in_slices_as_the_compiled_schema_judges_it(path):
    # A large body's verdict comes from a Python walk with its long arrays checked in Rust a
    # slice at a time (one Rust call over 8 MiB held the GIL 0.39 s): the same verdict.
    import random

    from llm_backend.spec.schema_dialect import _compiled, _shown, _valid_in_slices
    from tests.support.document import openai_document
    from tests.support.hostile_bodies import Builder

    schema, document = body_schema(path), openai_document()
    fast, _ = _compiled(schema)
    for seed in range(6):
        builder = Builder(document, random.Random(f"{seed}:{path}"), "smollm2")
        drawn = builder.parts(schema)
        slot = random.Random(seed).choice(builder.slots(drawn))
        body = json.loads(builder.filled(drawn, slot, 20_000))
        assert _valid_in_slices(schema, _shown(body)) == fast.is_valid(body), (seed, str(slot))
