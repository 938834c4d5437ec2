"""An endless stream (a watch) ends at the shutdown signal and frees what it follows when its
client leaves (http/sse.py: ``status_stream(..., endless=True)``), whatever it is waiting on."""

from __future__ import annotations

import asyncio

import anyio

from llm_backend.http.sse import _until


def watch(ended: list[str]):
    async def events():
        try:
            yield "status", {"models": []}
            await asyncio.sleep(3600)  # no change comes
            yield "ready", {"model": "never"}
        finally:
            ended.append("cleaned up")

    return events()


def test_a_watch_waiting_for_its_next_event_ends_at_the_signal_and_cleans_up():
    ended: list[str] = []

    async def run():
        stopping = anyio.Event()
        seen = []

        async def follow():
            async for event in _until(watch(ended), stopping):
                seen.append(event[0])

        following = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        stopping.set()
        done, _ = await asyncio.wait([following], timeout=1)
        assert done and ended == ["cleaned up"]  # within the loop's life, not at its teardown
        return seen

    assert asyncio.run(run()) == ["status"]


def test_a_watch_whose_client_leaves_cleans_up():
    ended: list[str] = []

    async def run():
        async def follow():
            async for _ in _until(watch(ended), anyio.Event()):
                pass

        async with anyio.create_task_group() as group:  # as sse-starlette cancels it
            group.start_soon(follow)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()
        await asyncio.sleep(0.01)
        assert ended == ["cleaned up"]  # within the loop's life, not at its teardown

    asyncio.run(run())


def test_a_watch_closed_between_two_events_cleans_up_at_once():
    ended: list[str] = []

    async def run():
        events = _until(watch(ended), anyio.Event())
        assert (await anext(events))[0] == "status"
        await events.aclose()  # as sse-starlette's stream closes it when its client leaves
        assert ended == ["cleaned up"]  # at once, not when the garbage collector finds it

    asyncio.run(run())
