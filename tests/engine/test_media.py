"""Images in the engine (issue #60), driven directly on ``synthetic://test-tiny-smolvlm`` and
its projector (SmolVLM-256M's vocabulary, template, tiles and counts; a tower that encodes in a
moment): framed by mtmd, counted as the projector makes them, encoded once per (tenant, image),
fed as embedding rows beside text streams. The model sees nothing (random weights): what is
checked is what the engine does with an image, never what is said of it. A text stream going
on while an image is encoded needs an encode that takes time: SmolVLM-256M's own tower.

``image_max_tokens: 64`` keeps each image to two tiles of 64 (about 7 s of encoding on one of
these cores with SmolVLM's tower, where its own framing, 17 tiles, is about 60 s); the full
framing is counted without encoding (``count``)."""

from __future__ import annotations

import base64
import hashlib
import io
import time

import pytest

from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.errors import RequestError
from tests.support.engines import Recorder, recording_engine, run
from tests.support.models import default_gguf, smolvlm_files, vision_files


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def image(data: bytes) -> dict:
    """An image part as the API process hands it to the worker (backends/llama/images.py)."""
    return {"type": "image", "data": base64.b64encode(data).decode(), "sha256": hashlib.sha256(data).hexdigest(), "detail": "auto"}


def ask(*parts: dict, tenant: str = "t1", **params) -> dict:
    content = [*parts, {"type": "text", "text": "What is in the picture?"}]
    return {"messages": [{"role": "user", "content": content}], "temperature": 0, "max_tokens": 4, "tenant": tenant, **params}


def usage(engine: Engine, rid: str) -> dict:
    return next(event for event in engine.recorder.events if event["id"] == rid and event["event"] == "usage")


def tiled_engine(model, projector) -> Engine:
    config = {"path": str(model), "mmproj": str(projector), "image_max_tokens": 64, "n_ctx": 1024, "parallel": 2, "n_threads": 1}
    return recording_engine(config)


@pytest.fixture(scope="module")
def engine():
    engine = tiled_engine(*vision_files("test-tiny-smolvlm"))
    yield engine
    engine.close()


@pytest.fixture
def slow_engine():
    """SmolVLM-256M's own tower: seconds a tile on these cores."""
    engine = tiled_engine(*smolvlm_files())
    yield engine
    engine.close()


def test_an_image_is_counted_as_the_projector_frames_it_and_answered(engine):
    text_only = len(engine.chat_prompt(ask()["messages"], tenant="t1")[0])
    prompt, _, _, spans = engine.chat_prompt(ask(image(png(1, 1)))["messages"], tenant="t1")
    assert [span.n for span in spans] == [64, 64]  # image_max_tokens: a tile and the whole image
    assert all(token < 0 for span in spans for token in prompt[span.start : span.end])  # placeholders, no vocabulary ids
    assert len(prompt) > text_only + 128  # and the framing's own text tokens
    engine.submit("one", "chat", ask(image(png(1, 1))))
    run(engine)
    assert engine.recorder.finish_reason("one") == "length"
    assert usage(engine, "one")["prompt_tokens"] == len(prompt)
    assert engine.media.encoded == 2


def test_the_same_tenants_image_is_not_encoded_again_and_another_tenants_is(engine):
    data = png(2, 2, (10, 200, 10))
    engine.submit("first", "chat", ask(image(data), tenant="a"))
    run(engine)
    encoded = engine.media.encoded
    engine.submit("again", "chat", ask(image(data), tenant="a", max_tokens=2))
    run(engine)
    assert engine.media.encoded == encoded  # its KV, or its rows, kept
    assert usage(engine, "again")["cached_tokens"] > 128  # past the image: its KV reused
    engine.submit("other", "chat", ask(image(data), tenant="b", max_tokens=2))
    run(engine)
    assert engine.media.encoded == encoded + 2  # another tenant's image is its own
    assert usage(engine, "other")["cached_tokens"] < 128  # at most the text before the image


def test_a_text_stream_goes_on_while_an_image_is_encoded(slow_engine):
    engine = slow_engine
    engine.submit("text", "chat", {"messages": [{"role": "user", "content": "Count to fifty."}], "max_tokens": 200, "temperature": 0, "tenant": "c"})
    engine.step()
    engine.submit("picture", "chat", ask(image(png(3, 3, (1, 2, 3))), tenant="c"))
    started, steps = time.monotonic(), 0
    while not any(event["id"] == "picture" and event["event"] == "delta" for event in engine.recorder.events):
        engine.step()
        steps += 1
    # The text stream stepped while the two tiles were encoded (seconds on these cores).
    assert steps > 20 and time.monotonic() - started > 1
    run(engine)


def test_a_prompt_with_images_is_cut_at_their_edges(engine):
    request = engine.submission.submit("cut", "chat", ask(image(png(1, 1)), tenant="d"))
    for fed in range(len(request.prompt)):
        request.fed = fed
        end = engine.scheduler.chunk_end(request, 512, 512)
        span = request.span_at(fed)
        # A chunk is all text or rows of one image: it never crosses an image's start or end.
        assert end <= (span.end if span else request.edge(fed))


def test_a_text_model_refuses_an_image_naming_the_messages():
    engine = Engine({"path": str(default_gguf()), "n_ctx": 256, "parallel": 1, "n_threads": 1}, Recorder())
    try:
        with pytest.raises(RequestError) as raised:
            engine.submit("no", "chat", ask(image(png(1, 1))))
        assert raised.value.status == 400 and raised.value.param == "messages"
    finally:
        engine.close()


def test_a_part_whose_digest_is_not_its_bytes_is_refused(engine):
    part = {**image(png(1, 1)), "sha256": "0" * 64}
    with pytest.raises(RequestError) as raised:
        engine.submit("forged", "chat", ask(part))
    assert raised.value.status == 400


def test_low_detail_is_the_image_at_512_pixels(engine):
    """OpenAI's ``detail: low`` is a 512 x 512 version of the image: what the model sees."""
    part = image(png(2048, 1024))
    bitmap = engine.media._bitmap({**part, "detail": "low"})
    try:
        assert (engine.media.mtmd.mtmd_bitmap_get_nx(bitmap), engine.media.mtmd.mtmd_bitmap_get_ny(bitmap)) == (512, 256)
    finally:
        engine.media.mtmd.mtmd_bitmap_free(bitmap)
    bitmap = engine.media._bitmap(part)
    try:
        assert engine.media.mtmd.mtmd_bitmap_get_nx(bitmap) == 2048
    finally:
        engine.media.mtmd.mtmd_bitmap_free(bitmap)


def test_an_image_framed_ahead_is_not_framed_on_the_engines_thread(engine, monkeypatch):
    """The worker's reader frames a request's images (frame_ahead: 180-520 ms an image at
    SmolVLM's own framing), so the step's thread only places them; a refusal found ahead is
    raised at submit, as one found there would be."""
    params = ask(image(png(300, 200, (5, 5, 5))), tenant="f")
    engine.media.frame_ahead(params["messages"])
    framed = []
    monkeypatch.setattr(engine.media, "_chunks", lambda part: framed.append(part) or [])  # counts, never called
    engine.submit("ahead", "chat", {**params, "max_tokens": 1})
    assert framed == [] and engine.running["ahead"].spans
    engine.cancel("ahead")
    forged = ask({**image(png(1, 1)), "sha256": "1" * 64})
    monkeypatch.undo()
    engine.media.frame_ahead(forged["messages"])
    with pytest.raises(RequestError):
        engine.submit("forged-ahead", "chat", forged)


@pytest.fixture(scope="module")
def whole_engine():
    """``synthetic://test-tiny-vision``: Gemma 3's projector, whose image attends to itself both ways."""
    model, projector = vision_files("test-tiny-vision")
    engine = recording_engine({"path": str(model), "mmproj": str(projector), "n_ctx": 512, "parallel": 2, "n_threads": 2})
    yield engine
    engine.close()


def greedy_text(engine: Engine, rid: str) -> str:
    engine.submit(rid, "chat", {"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": 8, "temperature": 0, "tenant": "w"})
    run(engine)
    return engine.recorder.text(rid)


def test_a_non_causal_image_is_one_span_decoded_whole_whatever_the_room(whole_engine):
    request = whole_engine.submission.submit("whole", "chat", ask(image(png(40, 30)), tenant="w"))
    [span] = request.spans
    assert span.whole and span.n == 16  # 224 pixels: 16 x 16 patches averaged 4 x 4
    request.fed = span.start
    assert whole_engine.scheduler.chunk_end(request, 1, 512) == span.end  # never cut, even with room for one row


def test_a_non_causal_image_is_answered_and_causal_attention_comes_back(whole_engine):
    before = greedy_text(whole_engine, "text-before")
    whole_engine.submit("seen", "chat", ask(image(png(40, 30)), tenant="w"))
    run(whole_engine)
    assert whole_engine.recorder.finish_reason("seen") == "length"
    assert usage(whole_engine, "seen")["prompt_tokens"] > 16
    # Left non-causal, the next prompt's rows would see each other both ways: another answer.
    whole_engine.forget()
    assert greedy_text(whole_engine, "text-after") == before


def test_a_failed_encode_ends_its_request_and_the_others_go_on(whole_engine, monkeypatch):
    """A mock, for a fault not produced for real here (mtmd failing on a well-framed image):
    the encode raises. Its request ends with the projector's error; a text stream beside it
    is answered, not failed with it."""

    def failing(span):
        span.embeddings.set_exception(RuntimeError("mtmd_encode_chunk failed"))

    monkeypatch.setattr(whole_engine.media, "_encode", failing)
    whole_engine.submit("text-beside", "chat", {"messages": [{"role": "user", "content": "Hello."}], "max_tokens": 6, "temperature": 0, "tenant": "z"})
    whole_engine.submit("unseen", "chat", ask(image(png(7, 7, (1, 1, 1))), tenant="z"))
    run(whole_engine)
    errors = [event for event in whole_engine.recorder.events if event["id"] == "unseen" and event["event"] == "error"]
    assert errors and errors[0]["error"]["status"] == 500
    assert whole_engine.recorder.finish_reason("text-beside") == "length"
