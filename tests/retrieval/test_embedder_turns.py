"""The embedder's one llama context is taken a batch at a time, in the order asked
(backends/embedding/embedder.py ``Turns``, issue #39): a long embeddings request delays a
search by about one batch, never by the whole request. Real embedder, threads, event order."""

from __future__ import annotations

import threading
import time

from llm_backend.backends.embedding.embedder import Turns
from tests.support.embedding import shared_embedder


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_turns_are_given_in_the_order_asked():
    turns, order = Turns(), []
    holding = threading.Event()
    release = threading.Event()

    def first() -> None:
        with turns:
            holding.set()
            release.wait(10)
            order.append("first")

    def asker(name: str) -> None:
        with turns:
            order.append(name)

    threading.Thread(target=first).start()
    holding.wait(10)
    threads = []
    for number, name in enumerate(["a", "b", "c", "d"]):
        thread = threading.Thread(target=asker, args=(name,))
        thread.start()
        wait_for(lambda: turns._next == number + 2)  # it holds its ticket before the next asks
        threads.append(thread)
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first", "a", "b", "c", "d"]


def test_a_short_text_is_embedded_while_a_long_request_runs():
    embedder = shared_embedder()
    long_texts = ["The lighthouse keeper counts the ships at dawn. " * 40] * 16  # ~8 batches of 512 tokens
    done: list[str] = []
    started = threading.Event()

    def long_request() -> None:
        started.set()
        embedder.embed(long_texts)
        done.append("long")

    asked = embedder._turns._next
    thread = threading.Thread(target=long_request)
    thread.start()
    started.wait(10)
    wait_for(lambda: embedder._turns._next > asked)  # the long request has its first batch
    embedder.embed(["Where is the harbour?"])
    done.append("short")
    thread.join(300)
    assert done == ["short", "long"], "the short text waited for the whole long request"
