"""Background indexing against kills: a kill -9 of the live server mid-upload or
mid-indexing leaves whole objects or work to finish, never a corrupt one; a restart on
the same data finishes the work and sweeps the leftovers. Also: a cancelled batch stops.

One SQLite server for the module (the PostgreSQL path of the same code is covered by
test_vector_stores.py; atomicity here is one transaction per file on either)."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import openai
import pytest
from sqlalchemy import text

from llm_backend.storage import Database
from tests.support import clients
from tests.support.embedding import long_text
from tests.support.server import LiveServer

POLL = {"poll_interval_ms": 100}
STATIC = {"type": "static", "static": {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 0}}
# About 2 000 tokens: a second or so of embedding on one thread here (the kill comes within
# tens of milliseconds of the embedding's start), in 400-token chunks without overlap.
LONG_TEXT = long_text(60)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # A short lease: a restarted server takes over its killed predecessor's files once it ran out.
    env = {"LLM_BACKEND_MODEL_LOAD": "lazy", "LLM_BACKEND_BACKGROUND_LEASE": "2"}
    with LiveServer(tmp_path_factory.mktemp("vs-recovery"), env=env) as server:
        yield server


@pytest.fixture
def client(live) -> openai.OpenAI:
    return clients.sdk(live, timeout=60)


def kill_9(live: LiveServer) -> None:
    os.killpg(live.process.pid, signal.SIGKILL)
    live.process.wait()


def wait_for_log(live: LiveServer, needle: str, since: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while needle not in live.log_path.read_bytes()[since:].decode(errors="replace"):
        assert time.monotonic() < deadline, f"{needle!r} not logged:\n{live.log()[-3000:]}"
        time.sleep(0.02)


def row(live: LiveServer, store_id: str, file_id: str) -> tuple[str, int]:
    """The store file's status and its number of chunks, read from the database itself."""
    db = Database(f"sqlite:///{live.workdir / 'data' / 'llm-backend.db'}")
    try:
        with db.engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT f.status, (SELECT count(*) FROM vector_store_chunks c WHERE c.vector_store_file_seq = f.seq) "
                    "FROM vector_store_files f JOIN vector_stores s ON s.seq = f.vector_store_seq "
                    "WHERE s.id = :store AND f.file_id = :file"
                ),
                {"store": store_id, "file": file_id},
            ).one()
    finally:
        db.dispose()


def test_a_kill_9_mid_indexing_leaves_the_file_in_progress_without_chunks_and_a_restart_finishes_it(live, client):
    store = client.vector_stores.create(name="crash")
    file_id = client.files.create(file=("long.txt", LONG_TEXT.encode()), purpose="assistants").id
    since = live.log_path.stat().st_size
    client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id, chunking_strategy=STATIC)
    wait_for_log(live, "embedding model loaded", since)  # indexing has begun: embedding now
    kill_9(live)
    assert tuple(row(live, store.id, file_id)) == ("in_progress", 0), "indexing ended before the kill"
    live.start()
    after = clients.sdk(live, timeout=60)
    done = after.vector_stores.files.poll(file_id, vector_store_id=store.id, **POLL)
    assert done.status == "completed"
    status, chunks = row(live, store.id, file_id)
    assert status == "completed" and chunks > 1
    assert after.vector_stores.retrieve(store.id).file_counts.completed == 1


def test_a_kill_9_mid_upload_stores_nothing(live, client):
    before = [file.id for file in client.files.list()]
    sent = threading.Event()

    def slow_body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.txt\"\r\n\r\n"
        for _ in range(50):
            yield b"x" * 65536
            sent.set()
            time.sleep(0.05)
        yield b"\r\n--b--\r\n"

    def upload() -> None:
        try:
            httpx.post(live.api + "/files", content=slow_body(), headers={"content-type": "multipart/form-data; boundary=b"}, timeout=30)
        except httpx.HTTPError:
            pass  # cut off by the kill

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert sent.wait(30)
    time.sleep(0.2)
    kill_9(live)
    uploader.join()
    live.start()
    assert [file.id for file in clients.sdk(live).files.list()] == before


def test_a_restart_sweeps_partial_writes_and_bytes_without_a_row(live, client):
    kept = client.files.create(file=("kept.txt", b"kept"), purpose="assistants")
    files_dir = live.workdir / "data" / "files"
    partial = files_dir / "ab" / ".file-deadbeefab.partial"
    orphan = files_dir / "cd" / "file-nobodyscd"
    for leftover in (partial, orphan):
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"left behind")
    kill_9(live)
    live.start()
    assert not partial.exists() and not orphan.exists()
    assert clients.sdk(live).files.content(kept.id).read() == b"kept"


def test_a_cancelled_batch_stops_and_its_files_are_cancelled(live, client):
    store = client.vector_stores.create(name="cancel")
    ids = [client.files.create(file=(f"c{i}.txt", LONG_TEXT.encode()), purpose="assistants").id for i in range(3)]
    batch = client.vector_stores.file_batches.create(store.id, file_ids=ids, chunking_strategy=STATIC)
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.cancelled >= 2
    deadline = time.monotonic() + 60
    while client.vector_stores.retrieve(store.id).file_counts.in_progress:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    statuses = {file_id: row(live, store.id, file_id) for file_id in ids}
    assert all(chunks == 0 for status, chunks in statuses.values() if status == "cancelled")
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, filter="cancelled")
    assert len(listed.data) == cancelled.file_counts.cancelled
