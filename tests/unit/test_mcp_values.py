"""The JSON values of an MCP answer counted as its bytes arrive (llm_backend/mcp/values.py):
the same count however the bytes are cut into chunks, strings skipped whatever they hold,
and no stray quote outside the JSON able to hide the values after it."""

from __future__ import annotations

import json
import random

import pytest

from llm_backend.mcp.values import ValueCount
from tests.support.fuzz import SEED

DOCUMENTS = [
    {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "a, b [c] {d}"}], "isError": False}},
    {"k": "\\", "j": '\\"', "l": '",[{', "m": "\n\r\t\u2028é"},
    [[[]], {}, "", 0, None, True, [1, 2, {"x": [3]}]],
]


def count(data: bytes, chunk: int, limit: int = 10**9) -> int:
    counter = ValueCount()
    return sum(counter.feed(data[start : start + chunk], limit) for start in range(0, len(data), chunk))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_count_does_not_depend_on_where_the_chunks_are_cut(document):
    raw = json.dumps(document, ensure_ascii=False).encode()
    whole = count(raw, len(raw))
    assert whole >= len(json.dumps(document).split(",")) - 1  # at least one per comma-separated value
    for size in (1, 2, 3, 5, 7, 64):
        assert count(raw, size) == whole, size


def test_commas_brackets_and_escapes_inside_strings_count_nothing():
    raw = json.dumps({"text": ',[{"' * 10_000 + "\\" * 3}).encode()
    assert count(raw, 4096) == 3  # the object, the key, the string


def test_a_stray_quote_on_an_sse_field_line_cannot_hide_the_data_after_it():
    raw = b'id: "\nevent: message\ndata: [' + b"1," * 5000 + b"1]\n\n"
    assert count(raw, 4096) >= 5000
    raw = b'data: ["a\\\n' + b"1," * 5000 + b"1]\n\n"  # an escaped line break ends the string too
    assert count(raw, 4096) >= 5000


def test_counting_stops_soon_after_the_limit():
    raw = json.dumps([{"type": "text", "text": "ab"}] * 100_000).encode()
    seen = ValueCount().feed(raw, 1000)
    assert 1000 < seen < 1100


def test_random_cuts_of_random_documents_agree():
    rng = random.Random(SEED)
    alphabet = 'ab,[{}]":\\\n é'
    for _ in range(200):
        document = [{"".join(rng.choices(alphabet, k=rng.randrange(6))): "".join(rng.choices(alphabet, k=rng.randrange(9)))}
                    for _ in range(rng.randrange(1, 6))]
        raw = json.dumps(document, ensure_ascii=False).encode()
        assert count(raw, rng.randrange(1, 9)) == count(raw, len(raw)), raw
