"""``expires_after`` of files and vector stores enforced (serving/expiry.py), through the
official SDK against live servers on SQLite and PostgreSQL, the sweeper running every
half second: an expired file is gone (row, store memberships, bytes), an expired vector
store is shown ``expired``, refuses searches and new files and loses its chunks; two
replicas sweeping one database expire each object once. Before, both were stored and
never enforced (an expired store still answered searches).

The shortest expiry OpenAI allows is an hour (files) or a day (stores): the tests move an
object's clock back in the database instead of waiting, the one thing not done through the
API; the sweeps, deletes and answers are real."""

from __future__ import annotations

import time

import openai
import pytest
from sqlalchemy import bindparam, text

from llm_backend.storage import Database
from tests.storage.conftest import EXPIRY_SWEEP, KEY_A
from tests.support import clients
from tests.support.server import LiveServer, log_records

DAY = 86400
HOUR = {"anchor": "created_at", "seconds": 3600}


def sql(db: Database, statement: str, **values):
    """``statement`` run with ``values`` (a list value fills an ``IN :name``)."""
    query = text(statement).bindparams(*(bindparam(name, expanding=True) for name, value in values.items() if isinstance(value, list)))
    with db.engine.begin() as connection:
        return connection.execute(query, values)


def eventually(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the sweeper did not get there"
        time.sleep(0.2)


def files_on_disk(store_server: LiveServer) -> set[str]:
    return {path.name for path in (store_server.workdir / "data" / "files").rglob("file-*")}


def test_an_expired_file_is_gone_at_once_and_swept_with_its_bytes_and_store_memberships(owner_a, store_server, server_db):
    kept = owner_a.files.create(file=("kept.txt", b"kept"), purpose="assistants", expires_after=HOUR)
    doomed = owner_a.files.create(file=("doomed.txt", b"doomed words here"), purpose="assistants", expires_after=HOUR)
    store = owner_a.vector_stores.create(name="with a doomed file", file_ids=[doomed.id])
    assert doomed.id in files_on_disk(store_server)
    sql(server_db, "UPDATE files SET expires_at = :past WHERE id = :id", past=int(time.time()) - 1, id=doomed.id)
    # Gone for the API at once, before any sweep.
    with pytest.raises(openai.NotFoundError):
        owner_a.files.retrieve(doomed.id)
    with pytest.raises(openai.NotFoundError):
        owner_a.files.content(doomed.id)
    assert doomed.id not in [file.id for file in owner_a.files.list()]
    # The bytes go just after the row's transaction commits.
    eventually(lambda: doomed.id not in files_on_disk(store_server))
    assert sql(server_db, "SELECT count(*) FROM files WHERE id = :id", id=doomed.id).scalar_one() == 0
    assert owner_a.vector_stores.files.list(store.id).data == []
    assert owner_a.files.retrieve(kept.id).id == kept.id


def test_an_expired_vector_store_is_expired_for_good_and_loses_its_chunks(owner_a, server_db):
    store = owner_a.vector_stores.create(name="short-lived", expires_after={"anchor": "last_active_at", "days": 1})
    owner_a.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("tides.txt", b"The moon pulls the oceans into tides."), poll_interval_ms=100
    )
    assert owner_a.vector_stores.search(store.id, query="moon tides").data
    went_quiet = int(time.time()) - 2 * DAY
    sql(server_db, "UPDATE vector_stores SET last_active_at = :past WHERE id = :id", past=went_quiet, id=store.id)
    shown = owner_a.vector_stores.retrieve(store.id)
    assert (shown.status, shown.expires_at) == ("expired", went_quiet + DAY)
    with pytest.raises(openai.BadRequestError) as caught:
        owner_a.vector_stores.search(store.id, query="moon tides")
    assert caught.value.body["code"] == "vector_store_expired"
    more = owner_a.files.create(file=("more.txt", b"more words"), purpose="assistants")
    with pytest.raises(openai.BadRequestError):
        owner_a.vector_stores.files.create(vector_store_id=store.id, file_id=more.id)
    with pytest.raises(openai.BadRequestError):
        owner_a.vector_stores.update(store.id, expires_after={"anchor": "last_active_at", "days": 365})
    chunks = "SELECT count(*) FROM vector_store_chunks c JOIN vector_stores s ON s.seq = c.vector_store_seq WHERE s.id = :id"
    eventually(lambda: sql(server_db, chunks, id=store.id).scalar_one() == 0)
    renamed = owner_a.vector_stores.update(store.id, name="still expired")
    assert (renamed.name, renamed.status, renamed.expires_at) == ("still expired", "expired", went_quiet + DAY)
    assert renamed.usage_bytes == 0
    assert owner_a.vector_stores.delete(store.id).deleted


# Replicas share a PostgreSQL database (SQLite serves one machine): no SQLite case to skip.
@pytest.mark.parametrize("store_server", ["postgresql"], indirect=True)
def test_replicas_sweeping_one_database_expire_each_object_once(store_server, server_db, tmp_path):
    env = {"LLM_BACKEND_DATABASE_URL": store_server.database_url, **EXPIRY_SWEEP, "LLM_BACKEND_MODEL_LOAD": "lazy"}
    other = clients.keyed_server(tmp_path / "replica", [KEY_A], env=env)
    first, second = clients.sdk(store_server, api_key=KEY_A), clients.sdk(other.start(), api_key=KEY_A)
    try:
        files = [
            client.files.create(file=(f"f{n}.txt", b"x"), purpose="assistants", expires_after=HOUR).id
            for n, client in enumerate([first, second] * 10)
        ]
        stores = [first.vector_stores.create(expires_after={"anchor": "last_active_at", "days": 1}).id for _ in range(5)]
        since = other.log_path.stat().st_size, store_server.log_path.stat().st_size
        sql(server_db, "UPDATE files SET expires_at = :past WHERE id IN :ids", past=int(time.time()) - 1, ids=files)
        sql(server_db, "UPDATE vector_stores SET last_active_at = :past WHERE id IN :ids", past=int(time.time()) - 2 * DAY, ids=stores)
        eventually(lambda: sql(server_db, "SELECT count(*) FROM files WHERE id IN :ids", ids=files).scalar_one() == 0)
        unmarked = "SELECT count(*) FROM vector_stores WHERE expires_at IS NULL AND id IN :ids"
        eventually(lambda: sql(server_db, unmarked, ids=stores).scalar_one() == 0)
        def records() -> list[dict]:
            found = []
            for server, start in ((other, since[0]), (store_server, since[1])):
                found += log_records(server, start)
            return found

        def swept() -> tuple[int, int]:
            sweeps = [r for r in records() if r.get("event") == "expired objects swept"]
            return sum(r["files"] for r in sweeps), sum(r["vector_stores"] for r in sweeps)

        # Each replica logs what its sweeps expired, just after committing them (so the log
        # may trail the rows by a moment): together, every object once, never twice.
        expected = (len(files), len(stores))
        eventually(lambda: all(count >= want for count, want in zip(swept(), expected)))
        assert swept() == expected
        assert [r for r in records() if r.get("level") in ("error", "critical")] == []
        assert all(first.vector_stores.retrieve(store).status == "expired" for store in stores)
    finally:
        other.stop()
