"""An ijson parser fed so that a long token costs its bytes once (``json/feeding.py``): the
events are ijson's own for the whole text, however its chunks come (a fresh seed each run,
printed for replay), and a long string cut into many chunks costs about what it costs sent
whole, where it cost it once a chunk."""

from __future__ import annotations

import json
import random
import time

import ijson

from llm_backend.json.feeding import Fed, basic_events


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind == 0:
        return rng.choice(["", "a" * rng.randrange(1, 200_000), 'q"\\' * rng.randrange(1, 1000), "é" * rng.randrange(1, 5000)])
    if kind == 1:
        return rng.choice([0, -1.5, 12345678901234, None, True, False])
    if kind == 2:
        return " " * rng.randrange(0, 3)
    if kind == 3:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 40))]
    return {f"k{i}": _value(rng, depth + 1) for i in range(rng.randrange(0, 8))}


def _fed(text: bytes, cuts: list[int]) -> list:
    events = ijson.sendable_list()
    fed = Fed(ijson.parse_coro(events, use_float=True), events)
    seen, start = [], 0
    for cut in [*cuts, len(text)]:
        fed.send(text[start:cut])
        start = cut
        seen += events
        del events[:]
    fed.close()
    return seen + list(events)


def test_the_events_are_ijsons_own_however_the_text_comes():
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")  # replay: random.Random(seed)
    rng = random.Random(seed)
    for _ in range(60):
        text = json.dumps(_value(rng), ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
        whole = list(ijson.parse(text, use_float=True))
        cuts = sorted(rng.sample(range(len(text)), min(len(text), rng.randrange(0, 300))))
        assert _fed(text, cuts) == whole
        assert list(basic_events(text, use_float=True)) == list(ijson.basic_parse(text, use_float=True))


def _cpu(feed) -> float:
    started = time.process_time()
    feed()
    return time.process_time() - started


def _data_url(mib: int) -> bytes:
    return json.dumps({"url": "data:image/png;base64," + "QUJD" * (mib << 18), "n": [1, 2]}).encode()


def test_a_long_string_in_many_chunks_costs_its_length_not_its_square():
    """A data URL in 64 KiB chunks, as a forwarded request's come: sent to ijson as they
    came, 16 MiB cost 15 times what 4 MiB did (0.74 CPU-s against 0.05); fed, about 4."""
    cost = {}
    for mib in (4, 16):
        text = _data_url(mib)
        cuts = list(range(65536, len(text), 65536))
        cost[mib] = min(_cpu(lambda: _fed(text, cuts)) for _ in range(3))  # noqa: B023
        assert _fed(text, cuts) == list(ijson.parse(text)), mib
    print(f"\n4 MiB {cost[4] * 1000:.0f} ms, 16 MiB {cost[16] * 1000:.0f} ms")
    assert cost[16] < 8 * cost[4], cost
