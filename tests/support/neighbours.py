"""Another tenant's short chat timed alone and beside a hostile request (issue #56): a
request that costs the engine per token (200 000 stop strings looked for at every token)
slowed every tenant of the model; the bound a neighbour's chat is held to beside one is
twice its time alone, plus a second (``within_bound``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from tests.conftest import MODEL
from tests.support.clients import http_client

TOKENS = 20
PROMPT = "Count from one to fifty, one number a line."  # no early end: all 20 tokens come


def chat_seconds(live, key: str, tokens: int = TOKENS) -> float:
    """The seconds of one chat of ``tokens`` tokens (greedy) of ``key``'s tenant."""
    body = {"model": MODEL, "max_completion_tokens": tokens, "temperature": 0, "messages": [{"role": "user", "content": PROMPT}]}
    with http_client(timeout=300) as client:
        started = time.perf_counter()
        answer = client.post(live.api + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        seconds = time.perf_counter() - started
    assert answer.status_code == 200, answer.text[:300]
    return seconds


def alone_seconds(live, key: str) -> float:
    """The best of three: what the chat costs with nothing beside it."""
    return min(chat_seconds(live, key) for _ in range(3))


def within_bound(alone: float, beside: float) -> bool:
    return beside <= 2 * alone + 1


@contextmanager
def beside(send: Callable[[httpx.Client, threading.Event], int]) -> Iterator[list[int]]:
    """``send`` run again and again in a thread, one request in flight at a time (a tenant
    that keeps one such request going), while the block runs; the statuses it got. The block
    starts once the first request is under way: ``send`` sets the event it is given when its
    request is answered, or when its answer's first generated text arrives (a stream)."""
    statuses: list[int] = []
    done, under_way = threading.Event(), threading.Event()

    def loop() -> None:
        with http_client(timeout=600) as client:
            while not done.is_set():
                statuses.append(send(client, under_way))
                under_way.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    assert under_way.wait(300), "the request beside never got under way"
    try:
        yield statuses
    finally:
        done.set()
        thread.join(600)
