"""The one scanner every lane's JSON goes through first (llm_backend/json/scan.py, issue
#47): exact depth and values for whatever ``json.loads`` reads, wherever a slice cuts a
string; a text past a bound refused before any parser keeps state, in time and memory that
do not follow its shape (400 KB of 200,000 ``[`` grew the API process by 18.7 GB)."""

from __future__ import annotations

import json
import random
import re
import sys
import threading
import time
import tracemalloc

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.http.body import parse_json
from llm_backend.json.scan import MAX_JSON_DEPTH, SLICE, Scanner, scan
from tests.unit.test_large_bodies import values_of


def depth_of(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def drawn(rng: random.Random, depth: int = 0):
    """A value whose strings hold what the scanner must not count (brackets, separators,
    quotes, backslashes), some longer than a slice, so that slices cut them anywhere."""
    kind = rng.choice(["list", "dict", "str", "number", "literal"] if depth < 12 else ["str", "number"])
    if kind == "list":
        return [drawn(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == "dict":
        return {text(rng): drawn(rng, depth + 1) for _ in range(rng.randrange(4))}
    if kind == "str":
        return text(rng)
    return rng.choice([0, -1.5e300, 10**30, True, False, None])


def text(rng: random.Random) -> str:
    pieces = ["[", "]", "{", "}", ",", ":", '"', "\\", "\\\"", "é😀", "x", " "]
    if rng.random() < 0.1:  # past a slice: cut by one, ending anywhere in the next
        return rng.choice(pieces) * rng.randrange(SLICE // 2, SLICE + 5)
    return "".join(rng.choice(pieces) for _ in range(rng.randrange(6)))


def test_depth_and_values_are_exact_wherever_a_slice_cuts_a_string():
    from tests.support.fuzz import SEED

    rng = random.Random(SEED)
    for _ in range(150):
        value = drawn(rng)
        # Padded so that the slices' ends fall anywhere in what follows.
        encoded = (" " * rng.randrange(SLICE) + json.dumps(value, ensure_ascii=rng.random() < 0.5)).encode()
        assert scan(encoded) == (values_of(value), depth_of(value)), SEED
        assert scan(encoded, MAX_JSON_DEPTH).depth <= MAX_JSON_DEPTH if depth_of(value) <= MAX_JSON_DEPTH else True


def test_a_text_fed_in_chunks_has_the_shape_of_the_whole():
    # A forwarded body arrives in chunks: one may end anywhere, on a string's backslash too.
    from tests.support.fuzz import SEED

    rng = random.Random(SEED)
    for _ in range(100):
        value = drawn(rng)
        encoded = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        scanner = Scanner()
        position = 0
        while position < len(encoded):
            step = rng.choice([1, 2, 3, rng.randrange(1, 2 * SLICE)])
            scanner.feed(encoded[position : position + step])
            position += step
        assert scanner.shape() == (values_of(value), depth_of(value)), SEED


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32-be"])
def test_sixty_four_levels_are_read_and_sixty_five_refused(encoding):
    for opens, closes in (("[", "]"), ('{"a": ', "}"), ('[{"a": ', "}]")):
        levels = MAX_JSON_DEPTH if len(opens) < 7 else MAX_JSON_DEPTH // 2
        at_limit = opens * levels + "1" + closes * levels
        assert parse_json(at_limit.encode(encoding)) == json.loads(at_limit)
        past = opens + at_limit + closes
        with pytest.raises(OpenAIError) as refused:
            parse_json(past.encode(encoding))
        assert (refused.value.status, refused.value.code) == (400, "invalid_body")
        assert "more than 64 levels deep" in refused.value.message


@pytest.mark.parametrize("leaf", ["[0]", "{}", '{"a": []}'])
def test_wide_leaves_at_the_bound_are_read_and_one_level_more_refused(leaf):
    # A slice of many leaves is first followed without them (their top: one deeper than
    # what remains); at the bound, bracket by bracket.
    inner = ",".join([leaf] * 60_000)
    for levels, refused in ((MAX_JSON_DEPTH - depth_of(json.loads(leaf)), False), (MAX_JSON_DEPTH - depth_of(json.loads(leaf)) + 1, True)):
        text = ("[" * levels + inner + "]" * levels).encode()
        assert (scan(text, MAX_JSON_DEPTH).depth > MAX_JSON_DEPTH) is refused
        assert scan(text).depth == levels + depth_of(json.loads(leaf))


@pytest.mark.parametrize("levels", [20_000, 200_000, 2_000_000])
@pytest.mark.parametrize("shape", ["arrays", "objects", "mixed", "in-a-string-first"])
def test_a_deep_text_is_refused_before_it_is_built(levels, shape):
    opens, closes = {"arrays": ("[", "]"), "objects": ('{"k":', "}"), "mixed": ('[{"a":', "}]"),
                     "in-a-string-first": ("[", "]")}[shape]
    count = levels // (2 if shape == "mixed" else 1)
    head = '{"x": "' + "[" * 100_000 + '", "metadata": ' if shape == "in-a-string-first" else '{"metadata": '
    body = (head + opens * count + "0" + closes * count + "}").encode()
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(OpenAIError) as refused:
            parse_json(body)
        took = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "more than 64 levels deep" in refused.value.message
    # Refused in the slice that passes the bound: what one slice costs (its copies, the
    # pieces re.sub joins: ~3 MB for 13,000 keys), whatever the text's size.
    assert peak < 64 * SLICE and took < 0.5, (peak, took)


def test_a_string_of_escaped_quotes_is_scanned_in_linear_time():
    # Each escaped quote of a string a slice cuts was once tried as a string's start,
    # each to the slice's end: 8 s for this 8 MB.
    body = b'["' + b'\\"' * 4_000_000 + b'", [[1]]]'
    started = time.process_time()
    assert scan(body) == (5, 3)
    assert time.process_time() - started < 1.5


def test_a_thread_scanning_a_large_text_lets_other_threads_run():
    # As test_large_bodies' parse: the scan of 8 MiB is a slice's C calls at a time, the
    # GIL free between them; CPU time, not the wall's (a busy machine makes no turn longer).
    # Up to three tries: on a loaded machine the OS may keep this thread off a core while
    # the scan runs on the other (a long "wait" with the GIL free all along: seen in full
    # runs at load 5-6); a scan that holds the GIL fails every try alike.
    body = b"[" + b",".join([b'"a"'] * 2_000_000) + b"]"
    started = time.process_time()
    scan(body, MAX_JSON_DEPTH, 10**9)
    whole = time.process_time() - started  # ~0.2-0.4 s on the shared 2-core machine
    tries = [_waits_beside_a_scan(body) for _ in range(3)]
    best = min(tries, key=lambda waits: max(waits))
    assert len(best) > 10 and max(best) < whole / 20, ([(len(w), max(w)) for w in tries], whole)


def _waits_beside_a_scan(body: bytes) -> list[float]:
    """The CPU time the process spent while this thread slept 1 ms, over and over, as
    another thread scanned ``body``: each is how long the scan kept the GIL from it."""
    waits: list[float] = []
    done = threading.Event()

    def scanned() -> None:
        try:
            scan(body, MAX_JSON_DEPTH, 10**9)
        finally:
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        worker = threading.Thread(target=scanned)
        worker.start()
        while not done.is_set():
            started = time.process_time()
            time.sleep(0.001)
            waits.append(time.process_time() - started)
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    return waits


def _inside_strings(text: bytes) -> list[tuple[int, int]]:
    """Where each string of valid JSON ``text`` lies, quotes included."""
    spans, opened = [], None
    for found in re.finditer(rb'\\.|"', text, re.DOTALL):
        if found.group() == b'"':
            if opened is None:
                opened = found.start()
            else:
                spans.append((opened, found.end()))
                opened = None
    return spans


def test_the_cuts_a_scan_gives_lie_outside_strings_a_slice_apart_but_for_strings():
    """``loads`` hands ijson pieces cut there: a string a piece left unfinished is lexed
    again with each piece after (``json/text._sliced``)."""
    from tests.support.fuzz import SEED

    rng = random.Random(SEED)
    for _ in range(60):
        value = drawn(rng)
        encoded = (" " * rng.randrange(SLICE) + json.dumps(value, ensure_ascii=rng.random() < 0.5)).encode()
        cuts: list[int] = []
        scan(encoded, cuts=cuts)
        spans = _inside_strings(encoded)
        assert cuts == sorted(set(cuts)) and all(0 < cut <= len(encoded) for cut in cuts), SEED
        assert not any(start < cut < end for cut in cuts for start, end in spans), SEED
        # Between two cuts every slice but the last ended inside a string: a gap is at most a
        # slice, and a slice and the whole of each string that lies in it.
        for before, after in zip([0, *cuts], [*cuts, len(encoded)]):
            inside = [end - start + SLICE for start, end in spans if start < after and end > before]
            assert after - before <= SLICE + sum(inside), SEED
