"""Stop strings searched as one automaton (issue #56): the same text released as a search of
each stop string in turn would release, at a cost per token that does not grow with the
number of stop strings."""

from __future__ import annotations

import codecs
import random
import time

from llm_backend.backends.llama.engine.text import TextStream
from tests.engine.test_text import feed

ALPHABET = "ab☃\n"  # few letters: stop strings overlap, nest and share beginnings often
ORDINARY = [f" word{index % 50}".encode() for index in range(400)]


def reference(stop: list[str], pieces: list[bytes]) -> tuple[str, bool]:
    """What the stream must show, found the plain way (the stream's before issue #56): at
    each token each stop string looked for on its own in the held text and the token's; the
    earliest cuts, else the longest end that begins some stop string is held back. (A
    shorter string that ends first wins over a longer one begun earlier and not yet whole,
    as a stream must: the rest of the longer one is not generated yet.)"""
    stop = [string for string in stop if string]
    decoder, held, shown = codecs.getincrementaldecoder("utf-8")(errors="replace"), "", ""
    for piece in pieces:
        text = held + decoder.decode(piece)
        found = [index for index in (text.find(string) for string in stop) if index >= 0]
        if found:
            return shown + text[: min(found)], True
        keep = max((length for string in stop for length in range(1, min(len(string), len(text) + 1))
                    if text.endswith(string[:length])), default=0)
        held, shown = text[len(text) - keep :], shown + text[: len(text) - keep]
    return shown + held, False


def test_the_automaton_releases_what_a_search_of_each_stop_string_releases():
    rng = random.Random(56)
    for case in range(3000):
        stop = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(1, 6))]
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30))).encode()
        cuts = sorted(rng.sample(range(1, len(text)), min(rng.randint(0, 8), max(len(text) - 1, 0)))) if len(text) > 1 else []
        pieces = [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)])]
        assert feed(TextStream(stop), pieces) == reference(stop, pieces), (case, stop, pieces)


def per_token(stop: list[str]) -> float:
    """The best of five runs' seconds a token of ordinary text costs (none of it stops)."""
    best = float("inf")
    for _ in range(5):
        stream = TextStream(stop)
        started = time.perf_counter()
        for piece in ORDINARY:
            assert not stream.push(piece).stopped
        best = min(best, (time.perf_counter() - started) / len(ORDINARY))
    return best


def test_a_token_costs_the_same_with_ten_thousand_stop_strings_as_with_four():
    few = per_token(["</answer>", "\nUser:", "<|im_end|>", "###"])
    many = per_token([f"<stop-{index}>" for index in range(10_000)])
    # A search of each string took ~11 ms a token here with 10 000 of them (2 000 times 4's).
    assert many <= 3 * few + 20e-6, f"4 stops: {few * 1e6:.1f} us a token, 10 000: {many * 1e6:.1f} us"
