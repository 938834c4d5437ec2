"""Replicas that agree, race by race: two threads drive the storage code on one database
(real SQLite, real PostgreSQL), as two replicas would, and the interleaving that went wrong
is forced with real barriers: a generator that waits in the middle of a part, or a pause
of one thread at a chosen SQL statement (SQLAlchemy's ``after_cursor_execute`` event,
with a time limit so a lock held meanwhile cannot hang the test). Nothing is mocked."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from llm_backend.storage import Database
from llm_backend.storage.clock import database_epoch
from llm_backend.storage.files import FileStore
from llm_backend.storage.models import StoredUpload
from llm_backend.storage.responses import NewResponse
from llm_backend.storage.uploads import UploadRefused, UploadStore

OWNER = "tenant-a"
PAUSE = 5.0  # the longest a paused thread waits (SQLite: the other thread may need its lock)


@contextmanager
def paused_at(database, thread: threading.Thread | None, matches, after_commit: bool = False):
    """Pause ``thread`` (None: any thread but this one) once, just after it ran the first
    statement ``matches(statement, parameters)`` accepts (``after_commit``: once the
    transaction that ran it has committed, its locks gone); ``.reached`` is set then, and
    ``.go`` lets it continue."""
    reached, go = threading.Event(), threading.Event()
    me = threading.current_thread()
    marked = threading.local()

    def ours() -> bool:
        current = threading.current_thread()
        return not reached.is_set() and (current is not me if thread is None else current is thread)

    def pause():
        reached.set()
        go.wait(PAUSE)

    def before(conn, cursor, statement, parameters, context, executemany):
        if ours() and matches(statement, parameters):
            if after_commit:
                marked.ran = True
            else:
                pause()

    def committed(session):
        if ours() and getattr(marked, "ran", False):
            marked.ran = False
            pause()

    event.listen(database.engine, "after_cursor_execute", before)
    event.listen(database.sessions, "after_commit", committed)
    try:
        yield reached, go
    finally:
        go.set()
        event.remove(database.engine, "after_cursor_execute", before)
        event.remove(database.sessions, "after_commit", committed)


def statement_is(start: str, param: str | None = None):
    def matches(statement: str, parameters) -> bool:
        shown = parameters.values() if isinstance(parameters, dict) else parameters or ()
        return statement.lstrip().upper().startswith(start.upper()) and (param is None or param in shown)

    return matches


def started(target, *args) -> tuple[threading.Thread, dict]:
    """``target(*args)`` in a thread; its answer or exception lands in the dict."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


# --- uploads: the sweep and a part being written -----------------------------------------------


@pytest.fixture
def uploads(database, tmp_path) -> tuple[UploadStore, FileStore]:
    return UploadStore(database, tmp_path / "uploads"), FileStore(database, tmp_path / "files")


def new_upload(store: UploadStore, size: int, lifetime: int = 3600) -> str:
    return store.create(OWNER, "data.bin", "assistants", size, "application/octet-stream", None, lifetime)["id"]


def past_its_time(database, upload_id: str) -> None:
    """Wait until the upload's time has run out by the database's clock, which the sweep
    judges by (its expires_at is whole seconds: 1-2 s after it was made, for 2 s)."""
    deadline = time.monotonic() + 30
    with database.sessions() as session:
        expires_at = session.scalar(select(StoredUpload.expires_at).where(StoredUpload.id == upload_id))
    while time.monotonic() < deadline:
        with database.sessions() as session:
            if session.scalar(select(database_epoch())) >= expires_at:
                return
        time.sleep(0.05)
    raise AssertionError(f"{upload_id} never ran out of time")


def test_an_upload_created_while_the_sweep_runs_keeps_its_parts(database, uploads):
    """The sweep used to list the live uploads first and then remove every other folder:
    an upload created and given a part in between lost the part's bytes, and its
    ``complete`` failed (a 500). Here the sweep is paused at its first read of the uploads."""
    store, files = uploads
    (store.directory / "upload_gone").mkdir(parents=True)  # bytes of an upload with no row
    sweeper = threading.Thread(target=store.sweep, daemon=True)
    with paused_at(database, sweeper, lambda sql, _: sql.lstrip().upper().startswith("SELECT") and "uploads" in sql) as (reached, go):
        sweeper.start()
        assert reached.wait(30)
        # (SQLite: the paused sweep may hold the one write lock; these wait for it.)
        upload_id = new_upload(store, 5)
        part = store.add_part(OWNER, upload_id, [b"hello"], 1 << 20)
        go.set()
        sweeper.join(60)
    done = store.complete(OWNER, upload_id, [part["id"]], None, files)
    assert done["status"] == "completed"
    assert files.content(OWNER, done["file"]["id"])[1] == b"hello"
    assert not (store.directory / "upload_gone").exists()


def test_a_part_written_while_its_upload_expires_is_refused_not_lost(database, uploads):
    """A part still arriving when the sweep removes its expired upload: refused with the
    upload's state (OpenAI's 400), never a vanished file (a 500)."""
    store, _ = uploads
    upload_id = new_upload(store, 10, lifetime=2)
    halfway, resume = threading.Event(), threading.Event()

    def chunks():
        yield b"12345"
        halfway.set()
        assert resume.wait(30)
        yield b"67890"

    writer, outcome = started(store.add_part, OWNER, upload_id, chunks(), 1 << 20)
    assert halfway.wait(30)
    past_its_time(database, upload_id)  # the upload's hour (here: two seconds)
    assert store.sweep() == 1
    resume.set()
    writer.join(30)
    assert isinstance(outcome.get("error"), UploadRefused), outcome
    assert outcome["error"].reason == "expired"
    assert not (store.directory / upload_id).exists()


def test_a_completion_keeps_its_parts_while_the_upload_expires(database, uploads):
    """An upload taken for completion is not swept, even once past its time: the sweep
    used to remove its parts while the completion was reading them (a 500)."""
    store, files = uploads
    upload_id = new_upload(store, 5, lifetime=2)
    part = store.add_part(OWNER, upload_id, [b"hello"], 1 << 20)
    taken = statement_is("UPDATE uploads", "completing")
    with paused_at(database, None, taken, after_commit=True) as (reached, go):
        completer, outcome = started(store.complete, OWNER, upload_id, [part["id"]], None, files)
        assert reached.wait(30)
        past_its_time(database, upload_id)
        store.sweep()
        go.set()
        completer.join(60)
    assert outcome.get("value", {}).get("status") == "completed", outcome
    assert files.content(OWNER, outcome["value"]["file"]["id"])[1] == b"hello"


# --- vector store file batches: a cancel and the indexer's last write -------------------------


def test_a_batch_cancelled_while_a_file_is_saved_stays_cancelled(database):
    """The indexer read its file ``in_progress``, a replica cancelled the batch, then the
    indexer wrote ``completed`` over the cancel (a write of what it had read). Its status
    write is a conditional update now: the cancel stays."""
    import numpy as np

    from llm_backend.storage.vector_index import NewChunk
    from llm_backend.storage.vector_store_batches import VectorStoreBatches
    from llm_backend.storage.vector_stores import NewStoreFile

    store_id = database.vector_stores.create(OWNER, None, {}, None, [])["id"]
    batches = VectorStoreBatches(database)
    batch, _ = batches.create_batch(OWNER, store_id, [NewStoreFile("file-one", {}, {"type": "auto"})])
    chunk = NewChunk("some text", 2, np.ones(4, dtype=np.float32))
    saver = threading.Thread()
    read = statement_is("SELECT vector_store_files")
    with paused_at(database, None, read) as (reached, go):
        saver, outcome = started(
            database.vector_index.save_chunks, OWNER, store_id, "file-one", [chunk], 100, True
        )
        assert reached.wait(30)
        cancelled = batches.cancel_batch(OWNER, store_id, batch["id"])
        go.set()
        saver.join(60)
    assert cancelled["status"] == "cancelled"
    assert outcome == {"value": False}
    assert batches.get_batch(OWNER, store_id, batch["id"])["status"] == "cancelled"
    assert database.vector_index.file_status(OWNER, store_id, "file-one")["status"] == "cancelled"


def lock_waits(database) -> int:
    """PostgreSQL: how many of this database's sessions wait for a lock now."""
    with database.engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        return connection.exec_driver_sql(query).scalar()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # SQLite: one writer at a time
def test_a_store_deleted_while_a_file_of_it_is_saved_is_deleted(database):
    """Found by the fuzz on PostgreSQL (seed 2067783929): ``DELETE /v1/vector_stores/{id}``
    answered 500 while the indexer saved a file of the store. The save locked the file's
    row, then (inserting chunks, bumping the store) the store's; the delete locks the store's
    row, then its files' (the cascade): a deadlock, and PostgreSQL aborted the delete. Every
    writer of a store's files locks the store first now, as the delete does. Here the save
    is paused once it holds the file's row, until the delete waits."""
    import numpy as np

    from llm_backend.storage.vector_index import NewChunk
    from llm_backend.storage.vector_stores import NewStoreFile

    store_id = database.vector_stores.create(OWNER, None, {}, None, [NewStoreFile("file-one", {}, {"type": "auto"})])["id"]
    chunk = NewChunk("some text", 2, np.ones(4, dtype=np.float32))
    with paused_at(database, None, statement_is("UPDATE vector_store_files")) as (reached, go):
        saver, saved = started(database.vector_index.save_chunks, OWNER, store_id, "file-one", [chunk], 100)
        assert reached.wait(30), saved
        deleter, deleted = started(database.vector_index.delete_store, OWNER, store_id)
        deadline = time.monotonic() + 30
        while not lock_waits(database) and time.monotonic() < deadline:
            time.sleep(0.02)
        go.set()
        saver.join(60)
        deleter.join(60)
    assert "error" not in deleted and isinstance(deleted["value"], int)
    assert "error" not in saved
    assert database.vector_stores.get(OWNER, store_id) is None


# --- batches: two processes writing one batch's output file ----------------------------------


def test_two_processes_ending_one_batch_keep_the_output_file_bytes(database, tmp_path):
    """A process whose lease ran out unseen and the one that took its batch over both end
    it: both find no output file and write it; the second's insert loses, and it used to
    remove the bytes both had written under one name (the recorded file then had none).
    Here one is paused after it looked for the file while the other writes it."""
    from llm_backend.serving.batches.output import answered, write_files

    files = FileStore(database, tmp_path / "files")
    store = database.batches
    batch = store.create(OWNER, "/v1/chat/completions", "file-input", "24h", 86400, None, None)
    claimed = claim(store, "replica-a")
    assert claimed is not None and claimed.id == batch["id"]
    assert store.accept(claimed.seq, "smollm2", [("line-1", {"model": "smollm2"})])
    store.answer(claimed.seq, 0, answered("line-1", 200, {"answer": 42}, "req_1"), False, {})
    with paused_at(database, None, statement_is("SELECT files.")) as (reached, go):
        late, outcome = started(write_files, store, files, claimed)
        assert reached.wait(30)
        written = write_files(store, files, claimed)  # the other process, start to end
        go.set()
        late.join(60)
    content = files.content(OWNER, written["output_file_id"])[1]  # (before: FileNotFoundError)
    assert b'"answer":42' in content
    assert outcome == {"value": written}  # the loser records the winner's file
    assert sorted(path.name for path in (tmp_path / "files").glob("*/*")) == [
        files.locate(OWNER, written["output_file_id"])[1].name
    ]  # the loser's bytes removed, the winner's kept


def claim(store, holder: str, lease: float = 30):
    return store.claim(holder, lease)


# --- leases: a replica whose clock is wrong ---------------------------------------------------

SKEW = "-2h"  # the skewed replica's clock runs two hours behind


@pytest.fixture
def skewed(new_migrated_url):
    """(database, run): a migrated PostgreSQL database, and ``run(code)``, which runs
    Python code as a replica whose clock is two hours behind: a real process with libfaketime
    preloaded (every clock call of the process is shifted), on the same database (``db``).
    Preloaded, not through the ``faketime`` wrapper: the wrapper opens a semaphore named for
    its pid, and one left by a killed run under a reused pid fails it ("sem_open: File
    exists"). PostgreSQL only: SQLite's clock is its process's own (one machine, one clock:
    replicas of a SQLite database share the machine)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "libfaketime is required (Debian package faketime): make system-deps installs it"
    skewed_env = {**os.environ, "LD_PRELOAD": found[0], "FAKETIME": SKEW, "PYTHONPATH": os.getcwd()}
    url = new_migrated_url("postgresql")
    database = Database(url)

    def run(code: str) -> str:
        script = "import sys, time\nfrom llm_backend.storage import Database\ndb = Database(sys.argv[1])\n" + code
        done = subprocess.run([sys.executable, "-c", script, url], env=skewed_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    # The skew is real: the process's clock, not ours (asked of a bare interpreter: 0.03 CPU-s,
    # where ``run``'s import of the storage code costs 0.6).
    shown = subprocess.run([sys.executable, "-c", "import time; print(time.time())"], env=skewed_env,
                           capture_output=True, text=True, timeout=120, check=True)
    assert float(shown.stdout) < time.time() - 7000
    yield database, run
    database.dispose()


def test_a_batch_lease_taken_by_a_replica_with_a_slow_clock_is_not_taken_over(skewed):
    database, run = skewed
    batch = database.batches.create(OWNER, "/v1/chat/completions", "file-input", "24h", 86400, None, None)
    assert run("print(db.batches.claim('slow-clock', 60).id)") == batch["id"]
    assert claim(database.batches, "true-clock", 60) is None  # (before: taken over at once)
    assert database.batches.row(batch["id"])["lease_holder"] == "slow-clock"


def test_a_background_response_of_a_replica_with_a_slow_clock_is_not_failed_as_abandoned(skewed):
    database, run = skewed
    run(
        "from llm_backend.storage.responses import NewResponse\n"
        "record = NewResponse(id='resp_slow', owner='tenant-a', model='smollm2', created_at=1, "
        "response={'id': 'resp_slow', 'object': 'response', 'status': 'in_progress', 'output': []}, "
        "request={}, input_items=[], background=True)\n"
        "db.responses.save(record, [])\n"
        "db.responses.touch(['resp_slow'])\n"
    )
    assert database.responses.fail_unfinished("interrupted", lease=60) == 0  # (before: 1)
    assert database.responses.status("resp_slow") == "in_progress"


def test_a_vector_store_file_indexed_by_a_replica_with_a_slow_clock_is_not_taken_over(skewed):
    database, run = skewed
    run(
        "from llm_backend.storage.vector_stores import NewStoreFile\n"
        "store = db.vector_stores.create('tenant-a', None, {}, None, [NewStoreFile('file-one', {}, {'type': 'auto'})])\n"
        "db.vector_stores.renew_leases([('tenant-a', store['id'], 'file-one')])\n"
    )
    assert database.vector_stores.claim_lapsed(60) == []  # (before: taken over at once)


# --- background responses: a cancel while the run stores its start ------------------------------


def test_a_cancel_while_the_run_stores_its_start_leaves_the_response_cancelled(database):
    """The run's ``finish`` (its ``in_progress`` object, as it starts) used to read the row,
    find it queued and write its object over whatever came in between: on SQLite the read
    holds no lock, so a cancel that landed then was lost and the response stayed
    ``in_progress`` for good (a full run here). The run is paused at its first statement
    while the cancel, from another thread, is given half a second to land."""
    database.responses.save(
        NewResponse(id="resp_race", owner=OWNER, model="smollm2", created_at=1700000000,
                    response={"id": "resp_race", "object": "response", "status": "queued", "output": []},
                    request={"model": "smollm2", "input": "hi"}, input_items=[], background=True)
    )
    running = {"id": "resp_race", "object": "response", "status": "in_progress", "output": []}
    cancelled = {**running, "status": "cancelled"}
    with paused_at(database, None, lambda sql, _: "responses" in sql.lower()) as (reached, go):
        runner, run = started(database.responses.finish, OWNER, "resp_race", running)
        assert reached.wait(30)
        canceller, cancel = started(database.responses.finish, OWNER, "resp_race", cancelled)
        time.sleep(0.5)  # the cancel reaches its write (SQLite: then waits on the run's lock)
        go.set()
        runner.join(30)
        canceller.join(30)
    assert "error" not in run and "error" not in cancel, (run, cancel)
    # The cancel came after the run had started: both changed the row, the cancel last.
    assert run["value"] is True and cancel["value"] is True
    assert database.responses.get(OWNER, "resp_race")["status"] == "cancelled"
    assert database.responses.status("resp_race") == "cancelled"


def test_the_sweep_never_fails_a_response_cancelled_after_it_read_the_rows(database):
    """The sweep (a lease run out, a stop) read the unfinished rows and wrote each one failed:
    on SQLite a cancel committed between its read and its write was written over. Paused
    after its read, the sweep now leaves the cancelled response as it is; on PostgreSQL the
    read locks the row, so the cancel waits and finds it failed. Either way, the two agree."""
    database.responses.save(
        NewResponse(id="resp_swept", owner=OWNER, model="smollm2", created_at=1700000000,
                    response={"id": "resp_swept", "object": "response", "status": "in_progress", "output": []},
                    request={"model": "smollm2", "input": "hi"}, input_items=[], background=True)
    )
    cancelled = {"id": "resp_swept", "object": "response", "status": "cancelled", "output": []}
    with paused_at(database, None, lambda sql, _: sql.lstrip().upper().startswith("SELECT") and "responses" in sql.lower()) as (reached, go):
        sweeper, swept = started(database.responses.fail_unfinished, "stopped", None, ["resp_swept"])
        assert reached.wait(30)
        canceller, cancel = started(database.responses.finish, OWNER, "resp_swept", cancelled)
        time.sleep(0.5)  # the cancel lands (SQLite) or waits on the sweep's row lock (PostgreSQL)
        go.set()
        sweeper.join(30)
        canceller.join(30)
    assert "error" not in swept and "error" not in cancel, (swept, cancel)
    status = database.responses.status("resp_swept")
    assert (cancel["value"], swept["value"], status) in ((True, 0, "cancelled"), (False, 1, "failed")), (cancel, swept, status)
    # A failed stream ends with its event; a cancelled one just stops.
    events = database.responses.events(OWNER, "resp_swept")[1]
    assert [event["type"] for event in events] == ([] if status == "cancelled" else ["response.failed"])
