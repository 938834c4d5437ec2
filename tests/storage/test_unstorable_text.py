"""Text no database can hold (NUL, longer than its column, an unpaired surrogate), through
real HTTP and the official SDK on SQLite and PostgreSQL: the same OpenAI answer on both,
never a 500, and a refused write stores nothing (``storage/storable.py``).

Found on a live service on PostgreSQL 15: ``DELETE /v1/files/%00``, ``GET
/v1/files?after=%00``, ``DELETE /v1/vector_stores/vs_%00`` and a 300-character vector store
name answered 500 there, 404 and 200 on SQLite."""

from __future__ import annotations

import httpx
import openai
import pytest
from sqlalchemy import text

from tests.storage.conftest import KEY_A


@pytest.fixture
def http(store_server):
    with httpx.Client(base_url=store_server.api, headers={"Authorization": f"Bearer {KEY_A}"}, timeout=30) as client:
        yield client


def rows(server_db, table: str) -> int:
    with server_db.engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def stored_bytes(files_dir) -> list:
    return sorted(path for path in files_dir.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/files/%00"),
        ("GET", "/files/file-%00"),
        ("GET", "/files/file-%00/content"),
        ("GET", "/files?after=%00"),
        ("DELETE", "/vector_stores/vs_%00"),
        ("GET", "/vector_stores/vs_%00"),
        ("GET", "/vector_stores/vs_%00/files"),
        ("GET", "/vector_stores?after=vs_%00"),
        ("GET", "/responses/resp_%00"),
        ("DELETE", "/responses/resp_%00"),
        ("GET", "/conversations/conv_%00"),
        ("GET", "/chat/completions/chatcmpl-%00"),
        ("GET", "/chat/completions?after=%00"),
        ("DELETE", "/files/file-" + "x" * 300),
    ],
)
def test_an_id_no_database_can_hold_names_nothing(http, method, path):
    answer = http.request(method, path)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_a_vector_store_name_longer_than_256_is_a_400_naming_it_and_stores_nothing(owner_a, server_db):
    before = rows(server_db, "vector_stores")
    with pytest.raises(openai.BadRequestError) as caught:
        owner_a.vector_stores.create(name="n" * 300)
    assert (caught.value.body["param"], caught.value.body["code"]) == ("name", "string_above_max_length")
    assert rows(server_db, "vector_stores") == before
    store = owner_a.vector_stores.create(name="n" * 256)
    with pytest.raises(openai.BadRequestError):
        owner_a.vector_stores.update(store.id, name="m" * 257)
    assert owner_a.vector_stores.retrieve(store.id).name == "n" * 256


def test_a_vector_store_name_with_nul_is_a_400_naming_it(owner_a):
    with pytest.raises(openai.BadRequestError) as caught:
        owner_a.vector_stores.create(name="a\x00b")
    assert (caught.value.body["param"], caught.value.body["code"]) == ("name", "invalid_value")


@pytest.mark.parametrize(
    "upload",
    [("f" * 600 + ".txt", b"words", "text/plain"), ("ok.txt", b"words", "text/" + "x" * 200)],
    ids=["filename", "mime type"],
)
def test_an_upload_whose_name_or_type_is_too_long_is_a_400_and_stores_nothing(owner_a, store_server, server_db, upload):
    files_dir = store_server.workdir / "data" / "files"
    on_disk = stored_bytes(files_dir)
    before = rows(server_db, "files")
    with pytest.raises(openai.BadRequestError) as caught:
        owner_a.files.create(file=upload, purpose="assistants")
    assert (caught.value.body["param"], caught.value.body["code"]) == ("file", "string_above_max_length")
    assert rows(server_db, "files") == before
    assert stored_bytes(files_dir) == on_disk


def test_an_unpaired_surrogate_is_a_400_and_stores_nothing(http, server_db):
    before = rows(server_db, "conversations")
    body = '{"items": [{"type": "message", "role": "user", "content": "half \\ud800 a pair"}]}'
    answer = http.post("/conversations", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_value"
    assert rows(server_db, "conversations") == before
    whole = '{"items": [{"type": "message", "role": "user", "content": "a whole pair \\ud83d\\ude00"}]}'
    created = http.post("/conversations", content=whole, headers={"Content-Type": "application/json"})
    assert created.status_code == 200, created.text
    item = http.get(f"/conversations/{created.json()['id']}/items").json()["data"][0]
    assert item["content"][0]["text"] == "a whole pair \U0001F600"
