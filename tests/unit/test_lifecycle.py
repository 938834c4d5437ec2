"""Loading and unloading one model: states, one shared load, unloads after the requests in
flight, failed and slow loads. The model is a pair of coroutines the test controls."""

from __future__ import annotations

import asyncio
import time

import pytest

from llm_backend.backends.events import ModelEvents
from llm_backend.backends.lifecycle import Lifecycle, ModelState
from llm_backend.errors import OpenAIError


class Model:
    """Counts loads and unloads; a load waits for ``release`` when ``gated``."""

    def __init__(self, gated: bool = False, fail: int = 0) -> None:
        self.loads = self.unloads = 0
        self.release = asyncio.Event()
        if not gated:
            self.release.set()
        self.fail = fail  # how many loads fail before one succeeds

    async def load(self) -> None:
        self.loads += 1
        await self.release.wait()
        if self.fail:
            self.fail -= 1
            raise RuntimeError("out of memory")

    async def unload(self) -> None:
        self.unloads += 1


def lifecycle(model: Model, events: ModelEvents | None = None) -> Lifecycle:
    return Lifecycle("tiny", model.load, model.unload, events or ModelEvents())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_model_starts_unloaded():
    assert lifecycle(Model()).state is ModelState.UNLOADED


async def test_a_request_loads_the_model_and_leaves_it_ready():
    model = Model()
    life = lifecycle(model)
    async with life.use(timeout=5):
        assert life.ready
    assert (life.state, model.loads, life.loads) == (ModelState.READY, 1, 1)


async def test_concurrent_first_requests_share_one_load():
    model = Model(gated=True)
    life = lifecycle(model)
    waiting = [asyncio.create_task(life.wait_loaded(timeout=5)) for _ in range(5)]
    await settle()
    assert life.state is ModelState.LOADING
    model.release.set()
    await asyncio.gather(*waiting)
    assert model.loads == 1


async def test_a_load_publishes_loading_then_ready():
    events = ModelEvents()
    subscription = events.subscribe()
    await lifecycle(Model(), events).wait_loaded(timeout=5)
    assert [subscription.queue.get_nowait()[0] for _ in range(2)] == ["loading", "ready"]


async def test_an_unload_waits_for_the_requests_in_flight():
    model = Model()
    life = lifecycle(model)
    finish = asyncio.Event()

    async def request() -> None:
        async with life.use(timeout=5):
            await finish.wait()

    running = asyncio.create_task(request())
    await settle()
    unloading = asyncio.create_task(life.unload())
    await settle()
    assert (life.state, model.unloads) == (ModelState.UNLOADING, 0)
    finish.set()
    await asyncio.gather(running, unloading)
    assert (life.state, model.unloads) == (ModelState.UNLOADED, 1)


async def test_a_request_after_an_unload_loads_the_model_again():
    model = Model()
    life = lifecycle(model)
    await life.wait_loaded(timeout=5)
    await life.unload()
    async with life.use(timeout=5):
        pass
    assert (model.loads, life.loads, life.state) == (2, 2, ModelState.READY)


async def test_a_failed_load_leaves_the_model_in_error_and_answers_503():
    model = Model(fail=1)
    life = lifecycle(model)
    with pytest.raises(OpenAIError) as raised:
        await life.wait_loaded(timeout=5)
    assert (raised.value.status, raised.value.code) == (503, "model_load_failed")
    assert "out of memory" not in raised.value.message  # the reason is the operator's, not any key's
    assert (life.state, life.error) == (ModelState.ERROR, "out of memory")


async def test_a_failed_load_frees_what_half_started():
    model = Model(fail=1)
    with pytest.raises(OpenAIError):
        await lifecycle(model).wait_loaded(timeout=5)
    assert model.unloads == 1


async def test_the_next_request_after_a_failed_load_tries_again():
    model = Model(fail=1)
    life = lifecycle(model)
    with pytest.raises(OpenAIError):
        await life.wait_loaded(timeout=5)
    await life.wait_loaded(timeout=5)
    assert (model.loads, life.state, life.error) == (2, ModelState.READY, None)


async def test_a_load_slower_than_the_timeout_answers_503_model_loading_and_goes_on():
    model = Model(gated=True)
    life = lifecycle(model)
    with pytest.raises(OpenAIError) as raised:
        await life.wait_loaded(timeout=0.05)
    assert (raised.value.status, raised.value.code, raised.value.headers) == (503, "model_loading", {"retry-after": "5"})
    assert life.state is ModelState.LOADING
    model.release.set()
    await life.wait_loaded(timeout=5)
    assert model.loads == 1


async def test_unloading_a_model_in_error_clears_the_error():
    life = lifecycle(Model(fail=1))
    with pytest.raises(OpenAIError):
        await life.wait_loaded(timeout=5)
    await life.unload()
    assert (life.state, life.error) == (ModelState.UNLOADED, None)


async def test_an_unload_during_a_load_waits_for_it_then_frees_the_model():
    model = Model(gated=True)
    life = lifecycle(model)
    life.load()
    await settle()
    unloading = asyncio.create_task(life.unload())
    await settle()
    assert model.unloads == 0
    model.release.set()
    await unloading
    assert (life.state, model.loads, model.unloads) == (ModelState.UNLOADED, 1, 1)


async def test_close_stops_a_load_under_way():
    model = Model(gated=True)
    life = lifecycle(model)
    loading = life.load()
    await settle()
    await life.close()
    assert loading.cancelled() and life.state is ModelState.UNLOADED


# keep_alive: how long a model stays loaded after its last request (Ollama's meaning).


async def test_keep_alive_unloads_the_model_that_long_after_its_last_request():
    model = Model()
    life = lifecycle(model)
    async with life.use(timeout=5, keep_alive=0.05):
        pass
    assert life.state is ModelState.READY and life.expires_at is not None
    await asyncio.sleep(0.2)
    assert (life.state, model.unloads, life.expired, life.expires_at) == (ModelState.UNLOADED, 1, True, None)


async def test_keep_alive_zero_unloads_at_once_and_none_never():
    model = Model()
    life = lifecycle(model)
    async with life.use(timeout=5, keep_alive=None):
        pass
    await asyncio.sleep(0.05)
    assert life.state is ModelState.READY and life.expires_at is None
    async with life.use(timeout=5, keep_alive=0):
        pass
    await settle()
    assert life.state is ModelState.UNLOADED and model.unloads == 1


async def test_a_request_during_the_keep_alive_keeps_the_model_and_sets_the_next_one():
    model = Model()
    life = lifecycle(model)
    async with life.use(timeout=5, keep_alive=1):  # a second: a loaded machine's loop wakes late
        pass
    async with life.use(timeout=5, keep_alive=60):  # comes before the first one runs out
        await asyncio.sleep(1.1)
        ending = time.time()
    await asyncio.sleep(0.1)  # past the first keep_alive, however late the loop wakes
    # The second's counts, from when it ended (not from this late-waking check: a loaded
    # machine's loop wakes a second late).
    assert life.state is ModelState.READY and life.expires_at >= int(ending + 60)
    assert model.loads == 1


async def test_the_request_after_an_expiry_loads_the_model_again():
    model = Model()
    life = lifecycle(model)
    async with life.use(timeout=5, keep_alive=0):
        pass
    await settle()
    async with life.use(timeout=5):
        assert life.ready and not life.expired
    assert (model.loads, model.unloads) == (2, 1)


async def test_an_expiry_leaves_a_model_that_a_request_took_in_the_meantime():
    # The keep_alive runs out (its timer fired: the unload is on its way), and a request
    # comes before the unload's turn: the model stays for it.
    model = Model()
    life = lifecycle(model)
    async with life.use(timeout=5, keep_alive=60):
        pass
    life._expire()
    async with life.use(timeout=5, keep_alive=None):
        await settle()
    await settle()
    assert life.state is ModelState.READY and model.unloads == 0 and not life.expired


async def test_a_models_own_keep_alive_runs_from_a_load_ahead_of_any_request():
    # An eager model loaded at startup that nobody asks for: its keep_alive still counts.
    model = Model()
    life = Lifecycle("tiny", model.load, model.unload, ModelEvents(), keep_alive=0.05)
    await life.wait_loaded(timeout=5)
    await asyncio.sleep(0.2)
    assert life.state is ModelState.UNLOADED and life.expired
    async with life.use(timeout=5):  # no keep_alive of its own: the model's
        pass
    assert life.expires_at is not None
