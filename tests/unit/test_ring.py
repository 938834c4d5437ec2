"""The hash ring with bounded loads (backends/ring.py, issue #51): keys spread evenly, an
engine leaving or joining moves only its own keys, every process computes the same homes,
and no engine takes more than the bound; and the route keys it is given (prefix_routes.py)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter

from llm_backend.backends.prefix_routes import route_key
from llm_backend.backends.ring import BOUND, Ring

KEYS = [f"conversation {n}".encode() for n in range(10_000)]


def homes(ring: Ring) -> list[str]:
    return [ring.names[next(ring.order(key))] for key in KEYS]


def test_keys_spread_within_a_quarter_of_even():
    shares = Counter(homes(Ring(["a", "b", "c", "d"])))
    assert set(shares) == {"a", "b", "c", "d"}
    assert all(abs(share - 2500) <= 2500 * 0.25 for share in shares.values()), shares


def test_weights_share_the_keys_in_proportion():
    shares = Counter(homes(Ring(["big", "small"], [3.0, 1.0])))
    assert 0.65 <= shares["big"] / len(KEYS) <= 0.85, shares


def test_an_engine_leaving_moves_only_its_keys():
    before = homes(Ring(["a", "b", "c", "d"]))
    after = homes(Ring(["a", "b", "d"]))
    moved = [(old, new) for old, new in zip(before, after) if old != new]
    assert moved and all(old == "c" for old, _ in moved)
    assert len(moved) == before.count("c")


def test_an_engine_joining_takes_about_its_share_and_only_from_the_others():
    before = homes(Ring(["a", "b", "c", "d"]))
    after = homes(Ring(["a", "b", "c", "d", "e"]))
    moved = [(old, new) for old, new in zip(before, after) if old != new]
    assert all(new == "e" for _, new in moved)
    assert abs(len(moved) - len(KEYS) / 5) <= len(KEYS) / 5 * 0.25, len(moved)


def test_the_order_is_each_engine_once_home_first():
    ring = Ring(["a", "b", "c"])
    for key in KEYS[:100]:
        order = list(ring.order(key))
        assert sorted(order) == [0, 1, 2] and order[0] == next(ring.order(key))


def test_every_process_computes_the_same_homes():
    # Python's hash() of str/bytes is salted per process: a ring on it would differ between
    # two gateway replicas. Another interpreter (another salt) must agree with this one.
    script = (
        "from llm_backend.backends.ring import Ring; r = Ring(['a', 'b', 'c']);"
        "print(''.join(r.names[next(r.order(f'conversation {n}'.encode()))] for n in range(200)))"
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert other.stdout.strip() == "".join(homes(Ring(["a", "b", "c"]))[:200])


def test_a_hot_key_spills_in_ring_order_within_the_bound():
    ring = Ring(["a", "b", "c", "d"])
    loads = [0, 0, 0, 0]
    usable = [True] * 4
    order = list(ring.order(b"one system prompt for everyone"))
    for placed in range(1, 101):  # 100 requests of one key, none finishing
        index = ring.pick(b"one system prompt for everyone", loads, usable)
        loads[index] += 1
        assert max(loads) <= math.ceil(BOUND * placed / 4), (placed, loads)
    assert max(loads) <= BOUND * 100 / 4 + 1
    # The home filled first, then the next engine on the ring, ...
    assert loads[order[0]] >= loads[order[1]] >= loads[order[3]]


def test_many_keys_under_load_stay_within_the_bound():
    ring = Ring(["a", "b", "c"])
    loads = [0, 0, 0]
    for placed, key in enumerate(KEYS[:3000], 1):
        index = ring.pick(key, loads, [True, True, True])
        loads[index] += 1
        assert max(loads) <= math.ceil(BOUND * placed / 3)
    idle = [0, 0, 0]
    # Idle, a key goes home.
    assert all(ring.pick(key, idle, [True] * 3) == next(ring.order(key)) for key in KEYS[:200])


def test_an_unusable_home_sends_its_keys_to_their_next_engine_only():
    ring = Ring(["a", "b", "c"])
    for key in KEYS[:500]:
        order = list(ring.order(key))
        usable = [index != order[0] for index in range(3)]
        assert ring.pick(key, [0, 0, 0], usable) == order[1]
        other = [index != order[1] for index in range(3)]  # another's engine gone: stays
        assert ring.pick(key, [0, 0, 0], other) == order[0]
    assert ring.pick(b"x", [0, 0, 0], [False] * 3) is None


def chat(system: str, *turns: str, **extra) -> dict:
    messages = [{"role": "system", "content": system}] + [{"role": "user", "content": turn} for turn in turns]
    return {"model": "m", "messages": messages, **extra}


def test_a_conversations_turns_share_their_route_key():
    assert route_key(chat("be terse", "hi"), "t") == route_key(chat("be terse", "hi", "and then?"), "t")
    # Per tenant: an engine shares a tenant's prefixes with that tenant alone.
    assert route_key(chat("be terse", "hi"), "t") != route_key(chat("be terse", "hi"), "u")
    assert route_key(chat("be terse", "hi"), "t") != route_key(chat("be brief", "hi"), "t")


def test_a_prompt_cache_key_decides_the_route():
    one = route_key(chat("be terse", "hi", prompt_cache_key="session-1"), "t")
    assert one == route_key(chat("another prompt", "hello", prompt_cache_key="session-1"), "t")
    assert one != route_key(chat("be terse", "hi", prompt_cache_key="session-2"), "t")
    assert one != route_key(chat("be terse", "hi", prompt_cache_key="session-1"), "u")
    assert route_key(None, "t") == route_key({"model": "m", "messages": []}, "t") == b""


def test_a_responses_turn_is_routed_by_its_prompt_cache_key():
    # Codex CLI sends every session the same first messages, and its session id as the key.
    from llm_backend.serving.responses.request import chat_request

    turn = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    chat_turn = chat_request({"model": "m", "prompt_cache_key": "session-1"}, [], turn, False)
    assert route_key(chat_turn, "t") == route_key(chat("other", "hello", prompt_cache_key="session-1"), "t")
