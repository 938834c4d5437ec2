"""Prefill sized by the device (issue #57): with no stream generating, a prompt goes in chunks
as large as ``n_ubatch`` (2048 with layers on a GPU, ``n_batch`` on the CPU); beside
generating streams, a step holds at most ``n_batch`` tokens. No GPU here: the GPU's sizes are
the device defaults' (a function of whether layers are offloaded), and the engine is run on
the CPU with the GPU's larger chunk set, as a GPU build would set it."""

from __future__ import annotations

import math

import llama_cpp
import pytest

from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.llama_params import GPU_UBATCH, N_BATCH, batch_sizes, gpu_offload, offloads, overlaps
from tests.support.engines import Recorder
from tests.support.models import tiny_gguf

PROMPT = "The harbour committee met on Tuesday to review the lighthouse repairs. " * 48  # about 580 tokens: past one chunk of 512


def test_a_gpu_prefills_in_larger_chunks_and_overlaps_its_steps_the_cpu_keeps_its_own():
    assert batch_sizes({}, offloaded=True) == (N_BATCH, GPU_UBATCH) == (512, 2048)
    assert batch_sizes({}, offloaded=False) == (512, 512)
    assert batch_sizes({"n_batch": 256}, offloaded=True) == (256, 2048)
    assert batch_sizes({"n_batch": 4096}, offloaded=True) == (4096, 4096)  # never a chunk under the step's budget
    assert batch_sizes({"n_ubatch": 1024}, offloaded=False) == (512, 1024)  # the model's setting wins
    assert overlaps({}, offloaded=True) and not overlaps({}, offloaded=False)
    assert overlaps({"overlap": True}, offloaded=False) and not overlaps({"overlap": False}, offloaded=True)
    # This build (the CPU one) offloads nothing, whatever the settings ask.
    assert not gpu_offload() and not offloads({"n_gpu_layers": "all"})


@pytest.fixture(scope="module")
def engines():
    from llama_cpp import _logger

    _logger.set_verbose(False)
    made = {}
    # On synthetic://test-tiny (1/26 of the default model's CPU a prompt token): the chunks
    # are the engine's, the same on any model, and an answer compared across two cuts of a
    # prompt changes more readily on its random weights' flatter logits than on SmolLM2's.
    for name, extra in (("cpu", {}), ("gpu_sized", {"n_ubatch": 1024})):
        recorder = Recorder()
        config = {"path": str(tiny_gguf()), "n_ctx": 2048, "parallel": 2, "n_threads": 1, **extra}
        made[name] = Engine(config, recorder)
        made[name].chunk_seconds = math.inf  # sized by the device alone (time-bounded chunks: scheduler.py)
        made[name].recorder = recorder
    yield made
    for engine in made.values():
        engine.close()


def prefill_chunks(engine: Engine, rid: str, beside: bool) -> list[int]:
    """The chunks ``rid``'s prompt went in, computed from nothing, with or without a stream
    generating beside it."""
    engine.forget()
    if beside:
        engine.submit("stream", "chat", {"messages": [{"role": "user", "content": "Write a long story."}], "temperature": 0, "max_tokens": 200})
        while engine.running["stream"].choices[0].completion_tokens == 0:
            engine.step()
    engine.submit(rid, "completion", {"prompt": PROMPT, "temperature": 0, "max_tokens": 8})
    request, chunks = engine.running[rid], []
    while request.fed < len(request.prompt):
        fed = request.fed
        engine.step()
        chunks.append(request.fed - fed)
    engine.cancel("stream")
    while engine.busy:
        engine.step()
    return chunks


def test_with_no_stream_generating_a_prompt_goes_in_chunks_of_n_ubatch_beside_streams_of_n_batch(engines):
    engine = engines["gpu_sized"]
    assert llama_cpp.llama_n_ubatch(engine.ctx) == 1024 and (engine.scheduler.n_batch, engine.scheduler.n_ubatch) == (512, 1024)
    alone = prefill_chunks(engine, "alone", beside=False)
    assert len(alone) == 1 and 512 < alone[0] <= 1024
    beside = prefill_chunks(engine, "beside", beside=True)
    assert len(beside) > 1 and max(beside) <= 511 and sum(beside) == alone[0]


def test_the_chunk_size_changes_no_greedy_answer_on_the_cpu(engines):
    """Chunks of 64 rows or more compute the same bits however the prompt is cut (prefixes.py)."""
    small = prefill_chunks(engines["cpu"], "small", beside=False)
    large = prefill_chunks(engines["gpu_sized"], "large", beside=False)
    assert len(small) == 2 and max(small) <= 512 and large == [sum(small)]
    assert engines["cpu"].recorder.text("small") == engines["gpu_sized"].recorder.text("large") != ""


def test_chunks_bounded_by_time_give_the_same_greedy_answer(engines):
    engine = engines["cpu"]
    whole = prefill_chunks(engine, "whole", beside=False)
    # A third of what the prompt took here, as its chunks were timed (on SmolLM2 0.5 s did:
    # test-tiny computes these 580 tokens in a tenth of a second).
    engine.chunk_seconds = engine.scheduler.pace.seconds(0, sum(whole)) / 3
    try:
        paced = prefill_chunks(engine, "paced", beside=False)
    finally:
        engine.chunk_seconds = math.inf
    assert paced != whole and sum(paced) == sum(whole), (paced, whole)
    assert engine.recorder.text("paced") == engine.recorder.text("whole") != ""
