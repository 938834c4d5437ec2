"""An upstream's event stream cut at its events' ends, whatever the network's pieces, in
bounded memory and linear time (``backends/upstream/event_frames.py``)."""

from __future__ import annotations

import random
import time

import pytest

from llm_backend.backends.upstream.event_frames import GATHERED, SLICE, EventFrames, EventTooLong, holds, split

EVENTS = [
    b'data: {"a": 1}\n\n',
    b": keep-alive\n\n",
    b'event: response.created\ndata: {"response": {"id": "resp_1"}}\n\n',
    b"data: \n\n",
    b"data: [DONE]\n\n",
    b'data: {"long": "' + b"w" * 100_000 + b'"}\n\n',  # past the pieces gathered (GATHERED)
]


def test_pieces_cut_anywhere_give_the_same_events_each_whole():
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")  # replay: random.Random(seed)
    rng = random.Random(seed)
    for _ in range(200):
        events = [rng.choice(EVENTS) for _ in range(rng.randint(1, 12))]
        stream = b"".join(events) + (b"data: last" if rng.random() < 0.5 else b"")
        cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randint(0, 20))))
        frames = EventFrames(1 << 17)
        got: list[bytes] = []
        for start, end in zip([0, *cuts], [*cuts, len(stream)]):
            got += split(frames.feed(stream[start:end]))
        assert got == events, (seed, cuts)
        assert frames.rest() == stream[len(b"".join(events)):]


@pytest.mark.parametrize("piece", [1, 4096, 300_000], ids=["byte-wise", "pieces", "one-large"])
def test_an_event_past_the_limit_is_refused_however_it_comes(piece):
    limit = 100_000
    frames = EventFrames(limit)
    stream = b"data: " + b"x" * (2 * limit) + b"\n\n"
    with pytest.raises(EventTooLong):
        for start in range(0, len(stream), piece):
            frames.feed(stream[start : start + piece])
    assert frames._held <= limit + piece  # held no more than the limit and one piece


def test_a_piece_of_whole_events_with_nothing_held_is_handed_back_as_it_is():
    # What every reader after the relay is fed: no copy of an event of up to 64 MiB.
    frames = EventFrames()
    events = b"".join(EVENTS)
    assert frames.feed(events) is events
    assert frames.feed(b"data: par") == b"" and frames.feed(b"t\n\n") == b"data: part\n\n"


def test_an_event_dripped_byte_by_byte_is_held_in_few_objects():
    frames = EventFrames(1 << 20)
    for byte in b"data: " + b"d" * 300_000:
        frames.feed(bytes([byte]))
    assert len(frames._parts) <= 300_006 // GATHERED + 1
    assert frames.feed(b"\n\n") == b"data: " + b"d" * 300_000 + b"\n\n"


def test_an_event_at_the_limit_passes_whole():
    event = b"data: " + b"x" * (1000 - 8) + b"\n\n"
    frames = EventFrames(1000)
    assert b"".join(frames.feed(event[i : i + 7]) for i in range(0, len(event), 7)) == event


def test_a_long_event_in_small_pieces_costs_its_length_once():
    # Searching all the bytes held again at each piece made 32 MiB in 1 KiB pieces a
    # quadratic 512 GB of reading; searched once, it is a fraction of a second.
    frames = EventFrames()
    piece = b"y" * 1024
    started = time.process_time()
    for _ in range(32 * 1024):
        assert frames.feed(piece) == b""
    assert frames.feed(b"\n\n").endswith(b"y\n\n")
    assert time.process_time() - started < 5


def test_a_relayed_answer_past_the_limit_passes_on_and_nothing_of_it_is_kept():
    import asyncio

    from llm_backend.backends.base import Relayed
    from llm_backend.serving.relayed import observe

    chunk = b'data: {"id": "chatcmpl-1", "choices": [{"delta": {"content": "' + b"z" * 1000 + b'"}}]}\n\n'
    stream = [chunk] * 100 + [b"data: [DONE]\n\n"]
    seen: list[tuple[int, bool]] = []

    async def record(objects, finished) -> None:
        seen.append((len(objects), finished))

    async def relayed(limit: int) -> bytes:
        async def chunks():
            for piece in stream:
                yield piece

        answer = observe(Relayed(200, [(b"content-type", b"text/event-stream")], chunks=chunks()), record, limit)
        return b"".join([piece async for piece in answer.chunks])

    assert asyncio.run(relayed(1 << 20)) == b"".join(stream) and seen == [(100, True)]
    seen.clear()
    assert asyncio.run(relayed(50_000)) == b"".join(stream) and seen == []  # passed on whole, kept nowhere


def test_a_part_is_found_across_the_slices_searched():
    for at in (0, SLICE - 3, SLICE - 7, SLICE, 2 * SLICE + 1, 3 * SLICE - 7):
        text = b"." * at + b'"usage"' + b"." * 10
        assert holds(text, b'"usage"') and holds(text, b'"usage"', max(at - 1, 0), at + 7)
        assert not holds(text, b'"usage"', at + 1) and not holds(text, b'"usage"', 0, at + 6)


def test_a_long_event_is_joined_beside_the_loop():
    """The relay frames an upstream's stream (``relay.framed``): the pieces of an event as
    long as the read limit allows were joined on the loop when it ended, one copy that held
    it (45 ms at 48 MiB here); ``bytes.join`` lets the GIL go, so beside the loop it does
    not. The loop's own work between two of its turns (its thread's CPU) is held to half of
    one such join's, best of three tries: in a full run the machine's scheduling alone made
    every wait 13 ms, longer than a join measured then (16 ms)."""
    import asyncio

    from llm_backend.backends.upstream.relay import framed, openai_error_event
    from tests.support.probe import loop_ticker

    event = b'data: {"content": "' + b"a" * (48 << 20) + b'"}\n\n'
    pieces = [event[start : start + 65536] for start in range(0, len(event), 65536)]
    started = time.thread_time()
    assert b"".join(pieces) == event
    one_join = time.thread_time() - started

    async def relayed() -> tuple[float, float, list[bytes]]:
        async def network():
            for piece in pieces:
                yield piece
                await asyncio.sleep(0)  # a read of the network: the loop's turn

        async with loop_ticker() as ticker:
            events = [events async for events in framed(network(), 64 << 20, "long", openai_error_event)]
        return ticker.longest_busy, ticker.longest, events

    tries = [asyncio.run(relayed()) for _ in range(3)]
    print(f"\nthe loop worked at most {[round(busy * 1000) for busy, _, _ in tries]} ms between turns, waited at most "
          f"{[round(longest * 1000) for _, longest, _ in tries]} ms; one join {one_join * 1000:.0f} ms")
    assert all(events == [event] for _, _, events in tries)
    assert min(busy for busy, _, _ in tries) < one_join / 2, ([busy for busy, _, _ in tries], one_join)
