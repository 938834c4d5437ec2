"""Which way a store is called, measured (issue #48): run `.venv/bin/python bench/store_calls.py`.

Three shapes of one stored-chat-completion read on SQLite (a temporary data dir, WAL), each
timed per call from the event loop, interleaved in rounds so the machine's noise falls on all:

- ``ladder``: the store's coroutine (``async def get`` running ``self._get`` through
  ``Database.run``), the older stores' twin shape;
- ``run``: the sync method, called as ``await database.run(store.get, ...)``;
- ``hop``: ``await database.run`` of a function that does nothing (the worker thread's
  round trip alone, what either shape pays on top of the query).

Also ``blocking``: the same query called on the loop, i.e. how long each call would freeze
every other request if a store ran on the loop (it never does; the reference for the hop).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_backend.storage import Database  # noqa: E402
from llm_backend.storage.chat_completions import NewChatCompletion  # noqa: E402

ROUNDS, CALLS = 20, 200
OWNER, ID = "bench", "chatcmpl-bench"


class Ladder:
    """The retired twin shape, rebuilt here for the comparison: a coroutine per method."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, owner: str, completion_id: str):
        return await self._database.run(self._database.chat_completions.get, owner, completion_id)


def _nothing() -> None:
    return None


async def _per_call(call) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        await call()
    return (time.perf_counter() - start) / CALLS * 1e6


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{folder}/bench.db")
        database.upgrade()
        response = {"id": ID, "object": "chat.completion", "choices": []}
        database.chat_completions.save(NewChatCompletion(ID, OWNER, "m", 0, {"messages": []}, response))
        store, ladder = database.chat_completions, Ladder(database)

        async def blocking() -> None:
            store.get(OWNER, ID)

        shapes = {
            "ladder": lambda: ladder.get(OWNER, ID),
            "run": lambda: database.run(store.get, OWNER, ID),
            "hop": lambda: database.run(_nothing),
            "blocking": blocking,
        }
        timings: dict[str, list[float]] = {name: [] for name in shapes}
        for _ in range(ROUNDS):
            for name, call in shapes.items():
                timings[name].append(await _per_call(call))
        database.dispose()
    print(f"per call, µs (median of {ROUNDS} rounds of {CALLS} calls; SQLite, one stored chat completion read)")
    for name, values in timings.items():
        print(f"  {name:9} {statistics.median(values):8.1f}   (min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    asyncio.run(main())
