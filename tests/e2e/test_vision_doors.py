"""Images through every door (issue #60), answered by a live server's synthetic vision model
(``synthetic://test-tiny-smolvlm``: SmolVLM-256M's vocabulary, template, tiles and counts, a
tower that encodes in a moment, random weights: it sees nothing, and its answer is not the point): chat's ``image_url`` by data URL and by a URL on the operator's
allow-list, a Responses ``input_image`` by data URL and by the caller's own ``file_id``, a
Messages ``image`` block; each image's tokens in ``usage`` as the projector makes them (a wider
image, more tiles). Another tenant's ``file_id`` is the Files API's 404, before the model is
asked anything, and another tenant sending the same image gets none of its cached tokens.

``image_max_tokens: 64`` frames an image in two tiles of 64 (a tile and the whole), as SmolVLM
would. Every door sends the same PNG for the same tenant, so it is encoded once for it
(engine/media.py: its rows kept)."""

from __future__ import annotations

import base64
import http.server
import io
import threading

import anthropic
import openai
import pytest

from tests.support import clients
from tests.support.clients import sdk
from tests.support.server import free_port

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
KEY, OTHER_KEY = "sk-vision-a", "sk-vision-b"
TILE = 64
CONFIG = """
model_load: eager
image_allowed_urls: ["http://127.0.0.1:{port}/images/"]
models:
  - id: seeing
    source: synthetic://test-tiny-smolvlm
    image_max_tokens: 64
    parallel: 1
    threads: 2
    defaults: {{temperature: 0, max_tokens: 2}}
"""
QUESTION = {"type": "input_text", "text": "What is it?"}


def _answered(response) -> bool:
    # Two tokens at most (the model's defaults): its answer is cut there, as asked.
    return response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


class _Images(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        found = self.path == "/images/dot.png"
        self.send_response(200 if found else 404)
        self.send_header("content-type", "image/png")
        self.send_header("content-length", str(len(PNG) if found else 0))
        self.end_headers()
        if found:
            self.wfile.write(PNG)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def images():
    """A site serving the PNG on loopback, which only the allow-list lets the service fetch."""
    site = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Images)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()


@pytest.fixture(scope="module")
def live(tmp_path_factory, images):
    config = CONFIG.format(port=images.rsplit(":", 1)[1])
    server = clients.keyed_server(tmp_path_factory.mktemp("vision-doors"), [KEY, OTHER_KEY], config=config)
    server.start(timeout=600)  # the model written (~10 s: shared with the run) and loaded
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def text_only_tokens(live):
    answer = sdk(live, KEY).responses.create(model="seeing", input=[{"role": "user", "content": [QUESTION]}])
    return answer.usage.input_tokens


def test_a_responses_input_image_by_data_url_is_answered_its_tokens_counted(live, text_only_tokens):
    image = {"type": "input_image", "image_url": DATA_URL, "detail": "auto"}
    answer = sdk(live, KEY).responses.create(model="seeing", input=[{"role": "user", "content": [QUESTION, image]}])
    assert _answered(answer)
    assert answer.usage.input_tokens > text_only_tokens + 2 * TILE  # two tiles of 64 of SmolVLM's projector


def test_a_responses_input_image_by_the_callers_own_file_id_is_answered(live, text_only_tokens):
    client = sdk(live, KEY)
    uploaded = client.files.create(file=("dot.png", io.BytesIO(PNG), "image/png"), purpose="vision")
    image = {"type": "input_image", "file_id": uploaded.id, "detail": "auto"}
    answer = client.responses.create(model="seeing", input=[{"role": "user", "content": [QUESTION, image]}])
    assert _answered(answer) and answer.usage.input_tokens > text_only_tokens + 2 * TILE


def test_another_tenants_file_id_is_a_404_as_files_answer(live):
    uploaded = sdk(live, KEY).files.create(file=("dot.png", io.BytesIO(PNG), "image/png"), purpose="vision")
    image = {"type": "input_image", "file_id": uploaded.id}
    with pytest.raises(openai.NotFoundError) as raised:
        sdk(live, OTHER_KEY).responses.create(model="seeing", input=[{"role": "user", "content": [QUESTION, image]}])
    error = raised.value.body
    assert error["message"] == f"No such File object: {uploaded.id}" and error["param"] == "input[0].content[1].file_id"


def test_a_messages_image_block_is_answered_its_tokens_counted(live):
    client = anthropic.Anthropic(base_url=live.base_url, api_key=KEY, max_retries=0, timeout=300)
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": DATA_URL.split(",")[1]}}
    plain = client.messages.create(model="seeing", max_tokens=2, messages=[{"role": "user", "content": "What is it?"}])
    seen = client.messages.create(
        model="seeing", max_tokens=2, messages=[{"role": "user", "content": [{"type": "text", "text": "What is it?"}, block]}]
    )
    assert seen.stop_reason in ("end_turn", "max_tokens") and _read(seen.usage) > _read(plain.usage) + 2 * TILE


def _read(usage) -> int:
    # Anthropic's input_tokens leaves out what the cache served (this tenant's same image, read before)
    return usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens


def chat(url: str, text: str = "What is it?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]}]


def test_a_chat_image_by_data_url_is_answered_and_counted_as_the_projector_frames_it(live):
    client = sdk(live, KEY)
    plain = client.chat.completions.create(model="seeing", messages=[{"role": "user", "content": "What is it?"}])
    seen = client.chat.completions.create(model="seeing", messages=chat(DATA_URL))
    assert seen.choices[0].finish_reason == "length"
    # Two tiles of 64 and the text the projector frames them with (<fake_token_around_image>...).
    framed = seen.usage.prompt_tokens - plain.usage.prompt_tokens
    assert 2 * TILE < framed < 2 * TILE + 20, framed


def test_a_wider_image_is_more_tiles(live):
    """SmolVLM tiles an image by its shape: a 4:1 image is counted (the Responses API's
    input_tokens: tokenized, not encoded) as more positions than a square one."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2048, 512), (30, 60, 90)).save(buffer, "PNG")
    wide = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    client = sdk(live, KEY)

    def count(url: str) -> int:
        image = {"type": "input_image", "image_url": url, "detail": "auto"}
        return client.responses.input_tokens.count(model="seeing", input=[{"role": "user", "content": [QUESTION, image]}]).input_tokens

    square, wider = count(DATA_URL), count(wide)
    assert wider >= square + TILE, (square, wider)


def test_a_chat_image_by_a_url_on_the_allow_list_is_fetched_and_answered(live, images):
    seen = sdk(live, KEY).chat.completions.create(model="seeing", messages=chat(f"{images}/images/dot.png"))
    assert seen.choices[0].finish_reason == "length" and seen.usage.prompt_tokens > 2 * TILE


def test_a_url_off_the_allow_list_is_refused_naming_the_image(live, images):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(live, KEY).chat.completions.create(model="seeing", messages=chat(images.replace("127.0.0.1", "localhost") + "/images/dot.png"))
    assert raised.value.body["param"] == "messages[0].content[0].image_url"


def test_another_tenant_sending_the_same_image_gets_none_of_its_cached_tokens(live):
    """The same tenant's image again is its own KV (cached past the image); another tenant's
    same image is computed for it: no cached token (a hit would tell it the image was sent)."""
    messages = chat(DATA_URL, "Again: what is it?")
    sdk(live, KEY).chat.completions.create(model="seeing", messages=messages)
    mine = sdk(live, KEY).chat.completions.create(model="seeing", messages=messages)
    assert mine.usage.prompt_tokens_details.cached_tokens > 2 * TILE
    theirs = sdk(live, OTHER_KEY).chat.completions.create(model="seeing", messages=messages)
    assert theirs.usage.prompt_tokens == mine.usage.prompt_tokens
    assert theirs.usage.prompt_tokens_details.cached_tokens == 0


def test_a_realtime_input_image_is_answered_its_tokens_counted(live):
    from tests.support.realtime import events_until

    session = {"type": "realtime", "output_modalities": ["text"], "max_output_tokens": 2, "audio": {"input": {"turn_detection": None}}}

    def turn(connection, *parts) -> dict:
        content = [*parts, {"type": "input_text", "text": "What is it?"}]
        connection.conversation.item.create(item={"type": "message", "role": "user", "content": content})
        connection.response.create()
        return events_until(connection, "response.done")[-1]["response"]

    with sdk(live, KEY).realtime.connect(model="seeing") as connection:
        events_until(connection, "session.created")
        connection.session.update(session=session)
        events_until(connection, "session.updated")
        plain = turn(connection)
        seen = turn(connection, {"type": "input_image", "image_url": DATA_URL})
    assert seen["status"] in ("completed", "incomplete")
    # The history (the first turn and its two-token answer) is a few tokens; the image, two tiles.
    assert seen["usage"]["input_tokens"] > plain["usage"]["input_tokens"] + 2 * TILE


def test_a_conversations_input_image_is_kept_and_read_by_a_response(live, text_only_tokens):
    client = sdk(live, KEY)
    image = {"type": "input_image", "image_url": DATA_URL, "detail": "auto"}
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": [image]}])
    [kept] = client.conversations.items.list(conversation.id).data
    assert kept.content[0].type == "input_image" and kept.content[0].image_url == DATA_URL
    answer = client.responses.create(model="seeing", conversation=conversation.id, input=[{"role": "user", "content": [QUESTION]}])
    assert _answered(answer) and answer.usage.input_tokens > text_only_tokens + 2 * TILE
