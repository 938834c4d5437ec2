"""Two replicas of the service on one PostgreSQL database: any replica answers for what the
other stored, and one replica's start-up or death does not break the other's work."""

from __future__ import annotations

import os
import signal
import time

import openai
import pytest

from tests.support.clients import sdk
from tests.support.server import LiveServer

MODEL = "smollm2"
LEASE = 3


@pytest.fixture(scope="module")
def replicas(new_database_url, tmp_path_factory) -> list[LiveServer]:
    url = new_database_url("postgresql")
    env = {"LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_BACKGROUND_LEASE": str(LEASE)}
    servers = [LiveServer(tmp_path_factory.mktemp(f"replica-{name}"), env=env) for name in "ab"]
    for server in servers:
        server.start()
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


def test_a_killed_replicas_background_response_is_failed_by_the_other(replicas, clients):
    a, b = clients
    orphan = a.responses.create(model=MODEL, input="Write a very long story.", background=True, max_output_tokens=2000)
    os.killpg(replicas[0].process.pid, signal.SIGKILL)
    replicas[0].process.wait()
    failed = wait_for(b, orphan.id, timeout=LEASE * 4 + 10)
    assert failed.status == "failed" and failed.error.code == "server_error"
