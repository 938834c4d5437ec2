"""The lines in front of shared engines serve tenants in turn (backends/fair_line.py, issue
#39): one tenant's burst delays another tenant's request by at most one of its own, and a
full line makes room for a tenant holding less of it. The order is the test: each request
records when it got its slot, and the slots are released one at a time."""

from __future__ import annotations

import asyncio

import pytest

from llm_backend.backends.fair_line import Admission
from llm_backend.errors import OpenAIError


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Scene:
    """One slot; requests take it in the order the admission gives it, each holding it until
    the test releases it."""

    def __init__(self, queue_size: int = 32) -> None:
        self.admission = Admission("m", slots=1, queue_size=queue_size, timeout=60)
        self.served: list[str] = []
        self.refused: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def request(self, name: str, tenant: str) -> None:
        self.release[name] = asyncio.Event()
        try:
            async with self.admission.slot(tenant):
                self.served.append(name)
                await self.release[name].wait()
        except OpenAIError as error:
            assert error.status == 429
            self.refused.append(name)

    def start(self, name: str, tenant: str) -> asyncio.Task:
        return asyncio.ensure_future(self.request(name, tenant))

    async def finish(self, name: str) -> None:
        self.release[name].set()
        await _settle()


async def test_a_burst_of_one_tenant_delays_another_by_one_request():
    scene = Scene()
    tasks = [scene.start(f"a{index}", "alice") for index in range(6)]
    await _settle()
    tasks.append(scene.start("b0", "bob"))
    await _settle()
    assert scene.served == ["a0"]
    await scene.finish("a0")
    await scene.finish("a1")
    # FIFO would serve a2..a5 before bob: in turn, bob's request is next after a1.
    assert scene.served == ["a0", "a1", "b0"]
    for name in ["b0", "a2", "a3", "a4", "a5"]:
        await scene.finish(name)
    await asyncio.gather(*tasks)
    assert scene.served == ["a0", "a1", "b0", "a2", "a3", "a4", "a5"]


async def test_a_full_line_makes_room_for_a_tenant_holding_less_of_it():
    scene = Scene(queue_size=3)
    tasks = [scene.start(f"a{index}", "alice") for index in range(4)]  # one runs, three wait
    await _settle()
    tasks.append(scene.start("a4", "alice"))
    await _settle()
    assert scene.refused == ["a4"], "the tenant holding the line gets 429 itself"
    tasks.append(scene.start("b0", "bob"))
    await _settle()
    assert scene.refused == ["a4", "a3"], "alice's newest waiter made room for bob"
    await scene.finish("a0")
    assert scene.served == ["a0", "a1"]
    await scene.finish("a1")
    assert scene.served[-1] == "b0"
    for name in ["b0", "a2"]:
        await scene.finish(name)
    await asyncio.gather(*tasks)


async def test_a_waiter_that_gives_up_keeps_nobody_in_line():
    scene = Scene()
    first = scene.start("a0", "alice")
    await _settle()
    gone = scene.start("b0", "bob")
    await _settle()
    later = scene.start("c0", "carol")
    await _settle()
    gone.cancel()
    await _settle()
    await scene.finish("a0")
    assert scene.served == ["a0", "c0"]
    await scene.finish("c0")
    await asyncio.gather(first, later)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert scene.admission.waiting == 0
