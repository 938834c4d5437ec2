"""Images through the Responses and Messages doors (issue #60): each turned into chat's
``image_url`` part, which the backend then checks as chat's own images
(backends/llama/images.py); a Responses ``input_image`` by ``file_id`` read from the caller's
own files (a real SQLite database and file store), another tenant's a 404 as files answer."""

from __future__ import annotations

import base64

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.families.messages.serving.request import chat_messages as messages_chat
from llm_backend.serving.files import file_store
from llm_backend.serving.responses.input_images import OwnFiles
from llm_backend.serving.responses.items import chat_messages, normalize
from llm_backend.serving.services import Services
from llm_backend.settings import Settings
from llm_backend.storage import Database

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def _turn(*parts) -> list:
    return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is it?"}, *parts]}]


# --- Responses: input_image ------------------------------------------------------------------


def test_an_input_image_by_url_is_a_chat_image_url_part_beside_the_text():
    items = normalize(_turn({"type": "input_image", "image_url": DATA_URL, "detail": "low"}), images=True)
    (message,) = chat_messages(items)
    assert message == {"role": "user", "content": [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "low"}},
    ]}


def test_an_input_image_is_stored_as_openai_stores_it_its_detail_auto_by_default():
    (item,) = normalize(_turn({"type": "input_image", "image_url": "https://example.com/cat.png"}), images=True)
    assert item["content"][1] == {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"}


def test_a_message_without_images_is_still_one_string_for_chat():
    (message,) = chat_messages(normalize(_turn(), images=True))
    assert message == {"role": "user", "content": "What is it?"}


def test_an_input_image_to_a_model_without_images_is_refused_naming_the_part_as_before():
    with pytest.raises(OpenAIError) as raised:
        normalize(_turn({"type": "input_image", "image_url": DATA_URL}))
    assert raised.value.status == 400 and raised.value.param == "input[0].content[1]"
    assert "input_image" in raised.value.message and "text only" in raised.value.message


@pytest.mark.parametrize("part, param", [
    ({"type": "input_image"}, "input[0].content[1]"),
    ({"type": "input_image", "image_url": ""}, "input[0].content[1].image_url"),
    ({"type": "input_image", "file_id": 7}, "input[0].content[1].file_id"),
])
def test_an_input_image_without_a_url_or_a_file_id_is_refused_naming_it(part, param):
    with pytest.raises(OpenAIError) as raised:
        normalize(_turn(part), images=True)
    assert raised.value.status == 400 and raised.value.param == param


def test_an_assistant_message_cannot_hold_an_input_image():
    item = {"type": "message", "role": "assistant", "content": [{"type": "input_image", "image_url": DATA_URL}]}
    with pytest.raises(OpenAIError) as raised:
        normalize([item], images=True)
    assert raised.value.param == "input[0].content[0]"


@pytest.fixture
def services(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.upgrade()
    settings = Settings(data_dir=tmp_path, image_max_bytes=4096, image_max_request_bytes=8192, image_max_count=2)
    return Services(settings, None, database)  # the files need no registry


def _upload(services: Services, owner: str, data: bytes, filename: str = "cat.png", mime: str | None = "image/png") -> str:
    return file_store(services).create(owner, filename, "vision", [data], mime)["id"]


async def test_an_input_image_by_file_id_is_the_callers_file_as_a_data_url_of_its_media_type(services):
    file_id = _upload(services, "tenant-a", PNG)
    items = normalize(_turn({"type": "input_image", "file_id": file_id}), images=True)
    _, read = await OwnFiles(services, "tenant-a").both([], items, "previous_response_id")
    (message,) = chat_messages(read)
    assert message["content"][1] == {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "auto"}}
    assert items[0]["content"][1] == {"type": "input_image", "file_id": file_id, "detail": "auto"}  # stored as sent


async def test_a_files_media_type_is_read_from_its_name_when_uploaded_without_one(services):
    file_id = _upload(services, "tenant-a", b"\xff\xd8\xff", filename="photo.jpg", mime="application/octet-stream")
    read = await OwnFiles(services, "tenant-a").readable(normalize(_turn({"type": "input_image", "file_id": file_id}), images=True), "input")
    assert read[0]["content"][1]["image_url"].startswith("data:image/jpeg;base64,")


async def test_another_tenants_file_id_is_a_404_as_the_files_api_answers(services):
    file_id = _upload(services, "tenant-a", PNG)
    items = normalize(_turn({"type": "input_image", "file_id": file_id}), images=True)
    with pytest.raises(OpenAIError) as raised:
        await OwnFiles(services, "tenant-b").both([], items, "previous_response_id")
    assert raised.value.status == 404 and raised.value.code == "not_found"
    assert raised.value.message == f"No such File object: {file_id}" and raised.value.param == "input[0].content[1].file_id"


async def test_a_file_past_the_image_bytes_is_refused_before_it_is_read(services):
    file_id = _upload(services, "tenant-a", PNG + b"\0" * 5000)
    items = normalize(_turn({"type": "input_image", "file_id": file_id}), images=True)
    with pytest.raises(OpenAIError) as raised:
        await OwnFiles(services, "tenant-a").readable(items, "input")
    assert raised.value.status == 400 and raised.value.param == "input[0].content[1].file_id"


async def test_more_file_images_than_a_request_may_hold_are_refused_counting_the_historys(services):
    file_id = _upload(services, "tenant-a", PNG)
    image = {"type": "input_image", "file_id": file_id}
    earlier, turn = normalize(_turn(image, image), images=True), normalize(_turn(image), images=True)
    with pytest.raises(OpenAIError) as raised:
        await OwnFiles(services, "tenant-a").both(earlier, turn, "conversation")
    assert raised.value.status == 400 and raised.value.code == "too_many_images"
    assert raised.value.param == "input[0].content[1].file_id"


# --- Messages: image blocks ------------------------------------------------------------------


def _messages(block) -> dict:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, block]}]}


def test_a_base64_image_block_is_a_chat_image_url_part_with_its_data_url():
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": DATA_URL.split(",")[1]}}
    (message,) = messages_chat(_messages(block))
    assert message["content"][1] == {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "auto"}}


def test_a_url_image_block_is_a_chat_image_url_part_with_its_url():
    block = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    (message,) = messages_chat(_messages(block))
    assert message["content"][1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "auto"}}


@pytest.mark.parametrize("source, param", [
    ({"type": "file", "file_id": "file_011"}, "messages[0].content[1].source.type"),
    ({"type": "base64", "data": "iVBO"}, "messages[0].content[1].source.media_type"),
    ({"type": "url"}, "messages[0].content[1].source.url"),
    ("https://example.com/cat.png", "messages[0].content[1].source.type"),
])
def test_an_image_block_whose_source_is_not_base64_or_url_is_refused_naming_it(source, param):
    with pytest.raises(OpenAIError) as raised:
        messages_chat(_messages({"type": "image", "source": source}))
    assert raised.value.status == 400 and raised.value.param == param
