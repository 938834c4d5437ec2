"""Files through the official SDK against a live server: upload, list, retrieve, download,
delete; per-key isolation; bad uploads store nothing; files outlive a restart."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support import clients
from tests.support.server import LiveServer

KEY_A, KEY_B = "sk-files-a", "sk-files-b"
BODY_LIMIT = 64 * 1024  # JSON bodies
UPLOAD_LIMIT = 256 * 1024  # createFile


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {
        "LLM_BACKEND_API_KEYS": f"{KEY_A},{KEY_B}",
        "LLM_BACKEND_MAX_BODY_BYTES": str(BODY_LIMIT),
        "LLM_BACKEND_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "LLM_BACKEND_MODEL_LOAD": "lazy",
    }
    with LiveServer(tmp_path_factory.mktemp("files"), env=env) as server:
        yield server


def sdk(server: LiveServer, key: str) -> openai.OpenAI:
    return clients.sdk(server, api_key=key, timeout=20)


@pytest.fixture
def owner_a(live):
    return sdk(live, KEY_A)


@pytest.fixture
def owner_b(live):
    return sdk(live, KEY_B)


def ids(page) -> list[str]:
    return [item.id for item in page.data]


def test_an_uploaded_file_is_described_and_comes_back_byte_for_byte(owner_a):
    content = "Grüße\nline two\n".encode()
    created = owner_a.files.create(file=("notes.txt", content, "text/plain"), purpose="assistants")
    assert (created.object, created.filename, created.purpose, created.bytes) == ("file", "notes.txt", "assistants", len(content))
    assert created.id.startswith("file-") and created.status == "processed"
    assert owner_a.files.retrieve(created.id) == created
    assert owner_a.files.content(created.id).read() == content


def test_list_is_newest_first_and_filters_by_purpose(owner_a):
    first = owner_a.files.create(file=("a.jsonl", b'{"x": 1}\n'), purpose="batch")
    second = owner_a.files.create(file=("b.md", b"# b"), purpose="user_data")
    listed = ids(owner_a.files.list())
    assert listed.index(second.id) < listed.index(first.id)
    assert ids(owner_a.files.list(purpose="batch")) == [first.id]
    assert ids(owner_a.files.list(order="asc"))[-1] == second.id


def test_list_pages_with_limit_and_after(owner_a):
    made = [owner_a.files.create(file=(f"p{i}.txt", b"page"), purpose="evals").id for i in range(3)]
    page = owner_a.files.list(purpose="evals", limit=2, order="asc")
    assert ids(page) == made[:2] and page.has_more
    assert ids(owner_a.files.list(purpose="evals", limit=2, order="asc", after=made[1])) == [made[2]]


def test_a_deleted_file_is_gone(owner_a):
    created = owner_a.files.create(file=("gone.txt", b"bye"), purpose="assistants")
    deleted = owner_a.files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        owner_a.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        owner_a.files.delete(created.id)


def test_another_key_can_neither_see_nor_delete_a_file(owner_a, owner_b):
    created = owner_a.files.create(file=("private.txt", b"mine"), purpose="assistants")
    assert created.id not in ids(owner_b.files.list())
    for call in (owner_b.files.retrieve, owner_b.files.content, owner_b.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(created.id)
    assert owner_a.files.retrieve(created.id).id == created.id


def test_an_empty_file_is_a_400_and_nothing_is_stored(owner_b):
    before = ids(owner_b.files.list())
    with pytest.raises(openai.BadRequestError) as caught:
        owner_b.files.create(file=("empty.txt", b""), purpose="assistants")
    assert caught.value.body["param"] == "file"
    assert ids(owner_b.files.list()) == before


def test_a_wrong_purpose_is_a_400(owner_b):
    with pytest.raises(openai.BadRequestError):
        owner_b.files.create(file=("x.txt", b"x"), purpose="homework")


def test_a_file_over_the_upload_limit_is_a_413_and_nothing_is_stored(owner_b):
    before = ids(owner_b.files.list())
    with pytest.raises(openai.APIStatusError) as caught:
        owner_b.files.create(file=("big.txt", b"x" * (UPLOAD_LIMIT + 1)), purpose="assistants")
    assert caught.value.status_code == 413 and caught.value.body["code"] == "request_too_large"
    assert ids(owner_b.files.list()) == before


def test_an_upload_may_exceed_the_json_body_limit(owner_a):
    content = bytes(range(256)) * (2 * BODY_LIMIT // 256)
    created = owner_a.files.create(file=("big.bin", content), purpose="assistants")
    assert created.bytes == len(content) > BODY_LIMIT
    assert owner_a.files.content(created.id).read() == content


def test_a_chunked_upload_over_the_limit_is_a_413_and_nothing_is_stored(live, owner_b):
    before = ids(owner_b.files.list())

    def body():  # no Content-Length: sent chunked
        yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n\r\n'
        for _ in range(UPLOAD_LIMIT // 65536 + 1):
            yield b"x" * 65536
        yield b"\r\n--b--\r\n"

    headers = {"Authorization": f"Bearer {KEY_B}", "content-type": "multipart/form-data; boundary=b"}
    answer = httpx.post(live.api + "/files", content=body(), headers=headers, timeout=30, verify=clients.TLS)
    assert answer.status_code == 413
    assert ids(owner_b.files.list()) == before


def test_a_chunked_upload_within_the_limit_is_stored_whole(live, owner_b):
    def body():
        yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n\r\n'
        for index in range(3):
            yield bytes([65 + index]) * 65536
        yield b"\r\n--b--\r\n"

    headers = {"Authorization": f"Bearer {KEY_B}", "content-type": "multipart/form-data; boundary=b"}
    answer = httpx.post(live.api + "/files", content=body(), headers=headers, timeout=30, verify=clients.TLS)
    assert answer.status_code == 200, answer.text
    assert owner_b.files.content(answer.json()["id"]).read() == b"A" * 65536 + b"B" * 65536 + b"C" * 65536


def test_an_unknown_file_is_a_404(owner_a):
    with pytest.raises(openai.NotFoundError):
        owner_a.files.retrieve("file-doesnotexist")


def test_files_outlive_a_restart(live, owner_a):
    created = owner_a.files.create(file=("kept.txt", b"still here"), purpose="assistants")
    live.stop()
    live.start()
    assert sdk(live, KEY_A).files.content(created.id).read() == b"still here"


def test_expires_after_sets_expires_at(owner_a):
    created = owner_a.files.create(
        file=("brief.txt", b"short-lived"), purpose="assistants", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert created.expires_at == created.created_at + 3600
    assert owner_a.files.retrieve(created.id).expires_at == created.expires_at


def test_expires_after_outside_one_hour_to_thirty_days_is_a_400(owner_b):
    before = ids(owner_b.files.list())
    with pytest.raises(openai.BadRequestError):
        owner_b.files.create(file=("x.txt", b"x"), purpose="assistants", expires_after={"anchor": "created_at", "seconds": 60})
    assert ids(owner_b.files.list()) == before
