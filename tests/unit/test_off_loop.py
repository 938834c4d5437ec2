"""What a full collection walks while the service runs (``off_loop.py``, issue #39): a gen 2
collection of the start-up's 500 000 objects held the GIL 0.1-0.3 s at moments of the
collector's choosing, and ``/health`` waited as long."""

from __future__ import annotations

import asyncio
import gc
import weakref

from llm_backend import off_loop


def test_the_start_ups_objects_stay_out_of_full_collections_after_large_work():
    start_up = [[index] for index in range(50_000)]  # long-lived objects, as the document's
    try:
        off_loop.settle()
        assert len(gc.get_objects(generation=2)) < 10_000

        async def request() -> int:
            count = await off_loop.off_loop(True, lambda: len([[index] for index in range(100_000)]))
            off_loop.release()  # the request's end (RequestContext)
            return count

        assert asyncio.run(request()) == 100_000
        # Its end did not hand every frozen object back to the collector: the next full
        # collection walks what was made since, not the start-up's 50 000 lists.
        assert len(gc.get_objects(generation=2)) < 10_000
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        del start_up


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_the_collector_is_paused_while_the_service_starts_and_on_once_it_is_ready():
    try:
        off_loop.starting()  # ``llm-backend serve``, before its imports
        assert not gc.isenabled()
        garbage = weakref.ref(_Node())
        assert garbage() is not None  # nothing collected it while starting
        off_loop.settle()  # the app ready
        assert gc.isenabled() and garbage() is None
        gc.disable()  # a process that keeps its collector off, its app built without ``serve``
        off_loop.settle()
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
