"""Shared fixtures. The default server runs the real default model (SmolLM2) with SQLite."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile

import openai
import pytest

from tests.support.clients import sdk, share_tls_context
from tests.support.postgres import PostgresCluster
from tests.support.server import SHARED_CACHE, LiveServer

MODEL = "smollm2"


# A test process holds a large heap (the document, Schemathesis' strategies, 5,000 items, the
# clients' models), and the collector's full passes walked it all, over and over, as the
# collection and the tests allocated: 37-40 of a full run's 278-282 test-process CPU-seconds
# (gc.callbacks, 2 cores, 2026-11-28). Young collections every 50,000 allocations, not 700,
# and what collection built frozen out of the collector's sight: 20-22 CPU-s. Three full runs
# each way, each pair in turn (without first, the machine slowing through the day): 573, 567
# and 606 s against 599, 582 and 608; 1,084-1,170 CPU-s against 1,118-1,170. Cycles are
# still collected, only less often.
GC_THRESHOLD = 50_000


def pytest_configure(config) -> None:
    gc.set_threshold(GC_THRESHOLD, 10, 10)
    # The test workers (pytest-xdist) are started after this and inherit the environment:
    # every worker fuzzes with the seed the header prints.
    from tests.support.fuzz import SEED

    os.environ["FUZZ_SEED"] = str(SEED)
    share_tls_context()
    if not hasattr(config, "workerinput"):  # the first process: one folder for the run
        os.environ[SHARED_CACHE] = tempfile.mkdtemp(prefix="llm-backend-tests-")


def pytest_unconfigure(config) -> None:
    if not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ.pop(SHARED_CACHE, ""), ignore_errors=True)


# The longest test files (their tests' seconds, `--junitxml`, a full run at 3 test processes,
# 2026-11-28), started first: pytest-xdist hands out whole files in collection order, and a
# long file taken last keeps one worker busy after the others are done.
LONGEST_FILES = [
    "tests/conformance/test_schemathesis.py",
    "tests/e2e/test_rate_limits.py",
    "tests/hostile/test_generated.py",
    "tests/storage/test_replicas.py",
    "tests/hostile/test_audio.py",
    "tests/e2e/test_pages.py",
    "tests/engine/test_prefixes.py",
    "tests/e2e/test_audio.py",
    "tests/e2e/test_mcp.py",
    "tests/upstream/test_anthropic_upstream.py",
    "tests/storage/test_batch_recovery.py",
    "tests/hostile/test_edge.py",
    "tests/e2e/test_responses.py",
    "tests/models/test_agent_tool_formats.py",
    "tests/realtime/test_conversation_session.py",
    "tests/models/test_hub.py",
    "tests/e2e/test_audio_engine.py",
    "tests/e2e/test_agent_clients.py",
    "tests/deploy/test_gpu_check.py",
    "tests/storage/test_replica_races.py",
    "tests/storage/test_api_keys.py",
    "tests/e2e/test_audio_piper.py",
    "tests/e2e/test_batches.py",
    "tests/models/test_synthetic.py",
    "tests/e2e/test_agent_tool_loops.py",
    "tests/storage/test_vector_search.py",
    "tests/storage/test_vector_stores.py",
    "tests/e2e/test_other_clients.py",
    "tests/e2e/test_local_serving.py",
    "tests/conformance/test_messages_conformance.py",
]


def pytest_collection_finish(session) -> None:
    gc.collect()
    gc.freeze()  # the collection's objects live as long as the process: out of every later pass


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    rank = {path: index for index, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_report_header(config) -> str:
    from tests.support.fuzz import SEED

    return f"fuzz seed: {SEED} (replay with FUZZ_SEED={SEED})"


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> LiveServer:
    """One live server for the whole session: no keys, embedded defaults, its database
    migrated from nothing at its start and its model loaded before it is ready, its KV pool the
    default's, as a first ``make run`` does."""
    with LiveServer(tmp_path_factory.mktemp("server"), migrated=False, load=None, pool=None) as live:
        yield live


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the session (``new_database_url``)."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def new_database_url(postgres, tmp_path_factory):
    """A factory: the URL of a new, empty database of the given kind."""

    def new(kind: str) -> str:
        if kind == "postgresql":
            return postgres.create_database()
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'llm-backend.db'}"

    return new


@pytest.fixture(scope="session")
def client(server) -> openai.OpenAI:
    return sdk(server, api_key="anything")


@pytest.fixture
def start_server(tmp_path):
    """Start extra servers with their own env or config; stopped after the test."""
    started: list[LiveServer] = []

    def start(env: dict[str, str] | None = None, config: str | None = None, **kwargs) -> LiveServer:
        live = LiveServer(tmp_path / f"server{len(started)}", env=env, config=config)
        started.append(live)
        return live.start(**kwargs)

    yield start
    for live in started:
        live.stop()
