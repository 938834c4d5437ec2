"""Batches survive their process: kill -9 mid-batch and the restarted service finishes it
(an OpenAI batch, and an Anthropic Message Batch: the same runner);
on two replicas sharing PostgreSQL (and the files volume), kill the one running a batch
and the other finishes it. Either way every ``custom_id`` is answered exactly once, and a
line answered before the kill keeps its answer (it is not run again)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import anthropic
import openai
import pytest
import sqlalchemy as sa

from tests.support.batches import file_lines, line, submit, wait
from tests.support.clients import sdk
from tests.support.server import LiveServer, start_together

MODEL = "smollm2"
LEASE = 2
# The kill lands once KILL_AT lines are answered: two rounds of the 8 lines a process runs at
# once, so lines are committed before it and 8 are in flight at it. Measured on the shared
# 2-core machine it landed 1-9 lines past its mark (~11 lines/s, polled every 0.1 s), so 60
# leave over 30 lines to run after it. A line costs ~35 ms of CPU: 150 lines (a kill at 40)
# took ~2 CPU-s a test more, for no more power.
LINES = 60
KILL_AT = 16
BATCHES = {"LLM_BACKEND_BATCH_LEASE": str(LEASE), "LLM_BACKEND_BATCH_NICE": "0"}


def quick_lines(count: int) -> list[dict]:
    """One-token completions of a two-token prompt: the batch's cost is its bookkeeping."""
    return [line(f"c{i}", {"model": MODEL, "prompt": f"Hi {i}", "max_tokens": 1}, "/v1/completions") for i in range(count)]


def answered_so_far(engine: sa.Engine, batch_id: str) -> dict[str, str]:
    """custom_id -> the id of its output line, for the lines committed so far."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT l.custom_id, l.output FROM batch_lines l JOIN batches b ON b.seq = l.batch_seq "
                "WHERE b.id = :id AND l.done"
            ),
            {"id": batch_id},
        ).all()
    import json

    return {custom_id: (output if isinstance(output, dict) else json.loads(output))["id"] for custom_id, output in rows}


def completed_count(client: openai.OpenAI, batch_id: str) -> int:
    return client.batches.retrieve(batch_id).request_counts.completed


def kill(server: LiveServer) -> None:
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server._log.close()


def kill_mid_batch(server: LiveServer, engine: sa.Engine, batch_id: str, answered: Callable[[], int]) -> dict[str, str]:
    """kill -9 once ``answered()`` says KILL_AT lines are answered: the lines committed by then."""
    deadline = time.monotonic() + 300
    while answered() < KILL_AT:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    kill(server)
    before_kill = answered_so_far(engine, batch_id)
    assert KILL_AT <= len(before_kill) < LINES
    return before_kill


def check_exactly_once(client: openai.OpenAI, batch_id: str, before_kill: dict[str, str]) -> None:
    done = wait(client, batch_id, timeout=600)
    assert done.status == "completed", done.errors
    assert (done.request_counts.total, done.request_counts.completed) == (LINES, LINES)
    output = file_lines(client, done.output_file_id)
    ids = [item["custom_id"] for item in output]
    assert sorted(ids) == sorted(f"c{i}" for i in range(LINES))  # each once, none lost
    kept = {item["custom_id"]: item["id"] for item in output if item["custom_id"] in before_kill}
    assert kept == before_kill  # answered before the kill: the same answer, not a second one


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One SQLite service for the kill -9 tests: each kills it and starts it again (a start
    costs ~2.7 CPU-s); a test whose kill left it down (a failure) finds it started."""
    server = LiveServer(tmp_path_factory.mktemp("service"), env=BATCHES).start()
    engine = sa.create_engine(f"sqlite:///{server.workdir / 'data' / 'llm-backend.db'}")
    yield server, engine
    server.stop()
    engine.dispose()


@pytest.fixture
def running_service(service):
    server, engine = service
    if server.process.poll() is not None:
        server.start()
    return server, engine


def test_kill_9_mid_batch_and_the_restarted_service_finishes_it(running_service):
    server, engine = running_service
    client = sdk(server)
    batch = submit(client, quick_lines(LINES), "/v1/completions")
    before_kill = kill_mid_batch(server, engine, batch.id, lambda: completed_count(client, batch.id))
    server.start()
    check_exactly_once(sdk(server), batch.id, before_kill)


def test_kill_9_mid_message_batch_and_the_restarted_service_finishes_it(running_service):
    server, engine = running_service
    client = anthropic.Anthropic(base_url=server.base_url, api_key="none", max_retries=0, timeout=60)
    requests = [{"custom_id": f"m{i}", "params": {"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": f"Hi {i}"}]}}
                for i in range(LINES)]
    batch = client.messages.batches.create(requests=requests)
    # Its counts say processing until it ends: the lines answered are read from the database.
    before_kill = kill_mid_batch(server, engine, batch.id, lambda: len(answered_so_far(engine, batch.id)))
    server.start()
    client = anthropic.Anthropic(base_url=server.base_url, api_key="none", max_retries=0, timeout=60)
    deadline = time.monotonic() + 600
    while (done := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.25)
    assert (done.request_counts.succeeded, done.request_counts.processing) == (LINES, 0)
    results = list(client.messages.batches.results(batch.id))
    assert sorted(entry.custom_id for entry in results) == sorted(f"m{i}" for i in range(LINES))  # each once
    after = answered_so_far(engine, batch.id)
    assert {custom_id: after[custom_id] for custom_id in before_kill} == before_kill  # not run again


@pytest.fixture
def replicas(new_database_url, tmp_path):
    """Two replicas on one PostgreSQL database and one data volume (the files)."""
    env = {
        "LLM_BACKEND_DATABASE_URL": new_database_url("postgresql"),
        "LLM_BACKEND_DATA_DIR": str(tmp_path / "shared-data"),
        **BATCHES,
    }
    servers = start_together(*(LiveServer(tmp_path / f"replica-{name}", env=env) for name in "ab"))
    yield servers, env["LLM_BACKEND_DATABASE_URL"]
    for server in servers:
        server.stop()


def test_kill_the_replica_running_a_batch_and_the_other_finishes_it(replicas):
    servers, url = replicas
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        clients = [sdk(server) for server in servers]
        batch = submit(clients[0], quick_lines(LINES), "/v1/completions")
        deadline = time.monotonic() + 300
        while completed_count(clients[0], batch.id) < KILL_AT:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with engine.connect() as connection:
            holder = connection.execute(sa.text("SELECT lease_holder FROM batches WHERE id = :id"), {"id": batch.id}).scalar()
        [running] = [index for index, server in enumerate(servers) if f"-{server.process.pid}-" in holder]
        kill(servers[running])
        before_kill = answered_so_far(engine, batch.id)
        assert KILL_AT <= len(before_kill) < LINES
        check_exactly_once(clients[1 - running], batch.id, before_kill)
    finally:
        engine.dispose()
