"""The meter of an Anthropic upstream's answers (``families/messages/serving/passthrough.Meter``): what
it counts of a whole Message, of a stream split anywhere by the network, and of a Message
that comes without its length; the bytes pass unchanged."""

from __future__ import annotations

import asyncio
import json
import time

from llm_backend.families.messages.serving.passthrough import Meter
from tests.support.probe import loop_ticker

START = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
         "usage": {"input_tokens": 12, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5, "output_tokens": 1}}}
DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _stream() -> bytes:
    events = [("message_start", START), ("content_block_delta", {"type": "content_block_delta", "index": 0,
              "delta": {"type": "text_delta", "text": "hi \"usage\""}}), ("message_delta", DELTA), ("message_stop", {"type": "message_stop"})]
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


async def _through(generator) -> bytes:
    return b"".join([chunk async for chunk in generator])


async def _pieces(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_whole_messages_usage_counts_cache_reads_and_writes_in_the_prompt():
    told = []
    Meter(told.append).heard({"input_tokens": 3, "cache_read_input_tokens": 40, "cache_creation_input_tokens": 7, "output_tokens": 5})
    assert told == [{"prompt_tokens": 50, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 40}}]


def test_a_stream_split_anywhere_is_counted_once_in_two_pieces_and_passes_unchanged():
    data = _stream()
    for size in (1, 7, 64, len(data)):
        told = []
        assert asyncio.run(_through(Meter(told.append).events(_pieces(data, size)))) == data
        assert told == [{"prompt_tokens": 47, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 30}},
                        {"prompt_tokens": 0, "completion_tokens": 8, "prompt_tokens_details": {"cached_tokens": 0}}], size


def test_a_repeated_cumulative_usage_adds_nothing():
    told = []
    meter = Meter(told.append)
    meter.heard(DELTA["usage"])
    meter.heard(DELTA["usage"])
    meter.heard({"output_tokens": 4})  # never below what was counted
    assert [usage["completion_tokens"] for usage in told] == [9]


def test_a_message_without_its_length_is_read_as_it_passes():
    message = {"id": "msg_1", "content": [{"type": "text", "text": "x" * 5000, "usage": {"output_tokens": 999}}],
               "usage": {"input_tokens": 4, "output_tokens": 6}}
    data = json.dumps(message).encode()
    told = []
    assert asyncio.run(_through(Meter(told.append).message(_pieces(data, 100)))) == data
    assert told == [{"prompt_tokens": 4, "completion_tokens": 6, "prompt_tokens_details": {"cached_tokens": 0}}]


def test_a_long_event_is_searched_for_usage_beside_the_loop():
    """An event may be as long as the upstream's read limit (64 MiB), and the relay hands it
    on whole: searched for ``"usage"`` on the loop, it held the loop for a whole pass over it
    (50 ms at 48 MiB here); now a thread searches it a slice at a time, the loop free between
    them. The longest the loop waits is held to half of one pass measured here, best of three
    tries (a loaded machine may stall the loop itself)."""
    text = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a" * (48 << 20)}}
    chunks = [_event("message_start", START), _event("content_block_delta", text), _event("message_delta", DELTA)]
    started = time.perf_counter()
    assert b'"usage"' not in chunks[1]
    one_pass = time.perf_counter() - started

    async def metered() -> tuple[float, list]:
        told: list = []
        async with loop_ticker() as ticker:
            passed = [chunk async for chunk in Meter(told.append).events(_pieces_of(chunks))]
        assert passed == chunks
        return ticker.longest, told

    tries = [asyncio.run(metered()) for _ in range(3)]
    assert all(told == [{"prompt_tokens": 47, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 30}},
                        {"prompt_tokens": 0, "completion_tokens": 8, "prompt_tokens_details": {"cached_tokens": 0}}] for _, told in tries)
    print(f"\nthe loop waited at most {[round(longest * 1000) for longest, _ in tries]} ms; one pass {one_pass * 1000:.0f} ms")
    assert min(longest for longest, _ in tries) < one_pass / 2, ([longest for longest, _ in tries], one_pass)


def test_a_long_message_without_its_length_costs_its_bytes_once():
    """A push parser read a Message as it passed, on the loop: ijson copies a string under
    way again with each piece, so each piece cost more than the last (6 s for a 48 MiB
    text). Now a piece costs its own bytes (``json/tail.Kept``)."""
    message = {"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "x" * (32 << 20)}],
               "stop_reason": "end_turn", "usage": {"input_tokens": 4, "output_tokens": 6}}
    data = json.dumps(message).encode()
    told = []
    started = time.process_time()
    passed = asyncio.run(_through(Meter(told.append).message(_pieces(data, 65536))))
    took = time.process_time() - started
    print(f"\n32 MiB metered in {took:.2f} CPU-s")
    assert passed == data and told == [{"prompt_tokens": 4, "completion_tokens": 6, "prompt_tokens_details": {"cached_tokens": 0}}]
    assert took < 1.0


async def _pieces_of(chunks: list[bytes]):
    for chunk in chunks:
        yield chunk
