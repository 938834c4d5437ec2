"""Two replicas of the service on one PostgreSQL database and one data volume: any replica
answers for what the other stored, and one replica's start-up or death does not break the
other's work. Real processes, killed with SIGKILL where a test says so."""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import openai
import pytest

from tests.support.metrics import scrape, value
from tests.e2e.test_responses_replay import TERMINAL
from tests.support.clients import sdk
from tests.support.embedding import long_text
from tests.support.server import LiveServer, log_size, start_together

MODEL = "smollm2"
LEASE = 3
POLL = {"poll_interval_ms": 200}
# Four files of about 2 500 tokens in 400-token chunks: queued and embedded one after the
# other for longer than a replica takes to start (its model loads on first use here).
LONG_TEXT = long_text(75)
STATIC = {"type": "static", "static": {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 0}}


@pytest.fixture(scope="module")
def database_url(new_database_url) -> str:
    return new_database_url("postgresql")


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory):
    """The data directory both replicas mount (a ReadWriteMany volume in k8s/replicas)."""
    return tmp_path_factory.mktemp("shared-data")


def replica_env(database_url: str, shared_data) -> dict[str, str]:
    return {
        "LLM_BACKEND_DATABASE_URL": database_url,
        "LLM_BACKEND_BACKGROUND_LEASE": str(LEASE),
        "LLM_BACKEND_DATA_DIR": str(shared_data),
        "LLM_BACKEND_MODEL_LOAD": "lazy",
        "LLM_BACKEND_INDEXING_NICE": "0",  # the machine is shared: keep indexing times short
    }


@pytest.fixture(scope="module")
def replicas(database_url, shared_data, tmp_path_factory) -> list[LiveServer]:
    env = replica_env(database_url, shared_data)
    servers = start_together(*(LiveServer(tmp_path_factory.mktemp(f"replica-{name}"), env=env) for name in "ab"))
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def clients(replicas) -> list[openai.OpenAI]:
    return [sdk(replica) for replica in replicas]


def wait_for(client: openai.OpenAI, response_id: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while (response := client.responses.retrieve(response_id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, response.status
        time.sleep(0.25)
    return response


def kill_9(replica: LiveServer) -> None:
    os.killpg(replica.process.pid, signal.SIGKILL)
    replica.process.wait()


def decoding(replica: LiveServer) -> float:
    """Sequences the replica's engines are decoding (its metrics, as an operator reads them)."""
    return value(scrape(replica), "llm_backend_sequences_in_use", model=MODEL)


def test_a_chat_stored_through_one_replica_is_read_through_the_other(clients):
    a, b = clients
    stored = a.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, store=True, metadata={"replica": "a"}
    )
    read = b.chat.completions.retrieve(stored.id)
    assert read.choices[0].message.content == stored.choices[0].message.content and read.metadata == {"replica": "a"}
    assert stored.id in [c.id for c in b.chat.completions.list(metadata={"replica": "a"})]


def test_a_response_chain_continues_on_the_other_replica(clients):
    a, b = clients
    first = a.responses.create(model=MODEL, input="My name is Ann.", max_output_tokens=16)
    second = b.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=16)
    assert second.usage.input_tokens > first.usage.input_tokens
    assert [item.id for item in a.responses.input_items.list(second.id)]


def test_a_conversation_grows_through_both_replicas(clients):
    a, b = clients
    conversation = a.conversations.create(items=[{"type": "message", "role": "user", "content": "Hello"}])
    b.conversations.items.create(conversation.id, items=[{"type": "message", "role": "user", "content": "Again"}])
    texts = [item.content[0].text for item in a.conversations.items.list(conversation.id, order="asc").data]
    assert texts == ["Hello", "Again"]


def test_a_replica_starting_leaves_the_others_background_responses_running(replicas, clients):
    a, b = clients
    running = a.responses.create(model=MODEL, input="Write a long story.", background=True, max_output_tokens=300)
    replicas[1].stop()
    replicas[1].start()  # its start-up sweep must not fail what replica a is running
    finished = wait_for(b, running.id)
    assert finished.status in ("completed", "incomplete"), finished.error


def test_a_cancel_through_the_other_replica_stops_the_run_where_it_runs(replicas, clients):
    a, b = clients
    running = a.responses.create(model=MODEL, input="Write a very long story.", background=True, max_output_tokens=2000)
    deadline = time.monotonic() + 30
    while not decoding(replicas[0]):
        assert time.monotonic() < deadline, "replica a never started decoding"
        time.sleep(0.1)
    cancelled = b.responses.cancel(running.id)
    assert cancelled.status == "cancelled"
    deadline = time.monotonic() + 10
    while decoding(replicas[0]):
        assert time.monotonic() < deadline, "replica a is still generating the cancelled response"
        time.sleep(0.1)
    time.sleep(1)  # whatever the stopped run wrote last is written by now
    for client in clients:
        assert client.responses.retrieve(running.id).status == "cancelled"


def test_a_background_response_is_replayed_live_through_the_other_replica(clients):
    a, b = clients
    running = a.responses.create(model=MODEL, input="Write a story.", background=True, max_output_tokens=64)
    live = list(b.responses.retrieve(running.id, stream=True, starting_after=1))
    assert [event.sequence_number for event in live] == list(range(2, 2 + len(live)))
    assert live[-1].type in TERMINAL
    text = "".join(event.delta for event in live if event.type == "response.output_text.delta")
    assert text and wait_for(a, running.id).output_text == text
    again = list(a.responses.retrieve(running.id, stream=True, starting_after=1))
    assert [event.model_dump() for event in again] == [event.model_dump() for event in live]


# Another process's upload, held open mid-write through the storage code an upload uses.
UPLOADER = textwrap.dedent(
    """
    import sys
    from llm_backend.auth import ANONYMOUS
    from llm_backend.storage import Database
    from llm_backend.storage.files import FileStore

    def parts():
        yield b"first half, "
        print("writing", flush=True)
        sys.stdin.readline()
        yield b"second half"

    store = FileStore(Database(sys.argv[1]), sys.argv[2])
    print(store.create(ANONYMOUS, "inflight.txt", "assistants", parts())["id"], flush=True)
    """
)


def test_a_starting_replica_leaves_another_processs_upload_in_flight(replicas, clients, database_url, shared_data):
    """The start-up sweep of the shared files directory spares an upload being written (a
    real upload is in flight only while its spooled body is copied: a helper process
    holds one open, through the same storage code, for as long as the test needs)."""
    uploader = subprocess.Popen(
        [sys.executable, "-c", UPLOADER, database_url, str(shared_data / "files")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert uploader.stdout.readline().strip() == "writing"
        assert list((shared_data / "files").glob("*/.*.partial")), "no upload in flight"
        replicas[1].stop()
        replicas[1].start()  # its start-up sweeps the shared files directory
        uploader.stdin.write("go on\n")
        uploader.stdin.flush()
        file_id = uploader.stdout.readline().strip()
        assert uploader.wait(30) == 0 and file_id.startswith("file-")
    finally:
        if uploader.poll() is None:
            uploader.kill()
    assert clients[1].files.content(file_id).read() == b"first half, second half"


def test_indexing_is_leased_left_to_a_live_replica_and_taken_over_from_a_killed_one(replicas, clients):
    """Files replica a holds (being indexed, or queued behind) are left to it by replica b
    starting; once a is killed, b takes over those still in progress and finishes them."""
    a, b = clients
    replicas[1].stop()
    store = a.vector_stores.create(name="leased")
    file_ids = [a.files.create(file=(f"long{n}.txt", f"{n} {LONG_TEXT}".encode()), purpose="assistants").id for n in range(4)]
    a.vector_stores.file_batches.create(store.id, file_ids=file_ids, chunking_strategy=STATIC)
    since = log_size(replicas[1])
    replicas[1].start()  # its start-up must not take the files replica a holds
    time.sleep(LEASE / 2)  # nor must its next sweep
    assert a.vector_stores.retrieve(store.id).file_counts.in_progress, "a indexed everything before b started"
    assert "took over" not in replicas[1].log_path.read_bytes()[since:].decode(errors="replace")
    kill_9(replicas[0])
    left = b.vector_stores.retrieve(store.id).file_counts.in_progress
    try:
        deadline = time.monotonic() + 120
        while (counts := b.vector_stores.retrieve(store.id).file_counts).completed < len(file_ids):
            assert counts.failed == 0 and time.monotonic() < deadline, counts
            time.sleep(0.2)
        b_log = replicas[1].log_path.read_bytes()[since:].decode(errors="replace")
        taken = int(re.search(r"took over (\d+) vector store files", b_log).group(1))
        assert 1 <= taken <= left and b_log.count('"vector store file indexed"') == taken
    finally:
        replicas[0].start()


# libfaketime (Debian package faketime, installed by make system-deps), for any architecture.
FAKETIME = next(iter(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")), None)


def test_a_replica_whose_clock_is_two_hours_slow_keeps_its_background_response(
    replicas, clients, database_url, shared_data, start_server
):
    """A third replica runs under libfaketime, its clock two hours behind (a real skew:
    every clock call of its processes is shifted). Its background response's lease used to
    be written with its own clock: the other replicas' sweeps (every lease, 3 s) saw it two
    hours old and failed it at once. Leases are the database's clock now."""
    assert FAKETIME, "libfaketime is required (Debian package faketime): make system-deps installs it"
    slow = start_server(env={**replica_env(database_url, shared_data), "LD_PRELOAD": FAKETIME, "FAKETIME": "-2h"})
    client = sdk(slow)
    assert client.models.list()  # up
    running = client.responses.create(model=MODEL, input="Write a story.", background=True, max_output_tokens=200)
    finished = wait_for(clients[1], running.id, timeout=240)
    assert finished.status in ("completed", "incomplete"), finished.error  # not failed as abandoned


def test_a_killed_replicas_background_response_is_failed_by_the_other(replicas, clients):
    a, b = clients
    orphan = a.responses.create(model=MODEL, input="Write a very long story.", background=True, max_output_tokens=2000)
    os.killpg(replicas[0].process.pid, signal.SIGKILL)
    replicas[0].process.wait()
    failed = wait_for(b, orphan.id, timeout=LEASE * 4 + 10)
    assert failed.status == "failed" and failed.error.code == "server_error"
