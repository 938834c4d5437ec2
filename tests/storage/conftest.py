"""Storage fixtures: every storage and stored-completion test runs on SQLite and on a real
PostgreSQL cluster (one per session, a fresh database per use: tests/conftest.py)."""

from __future__ import annotations

import shutil
import uuid

import openai
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from llm_backend.storage import Database
from tests.support import clients
from tests.support.server import LiveServer

DATABASES = ["sqlite", "postgresql"]
# Two static keys: two owners whose stored completions must stay apart.
KEY_A, KEY_B = "sk-test-owner-a", "sk-test-owner-b"
EXPIRY_SWEEP = {"LLM_BACKEND_EXPIRY_SWEEP_SECONDS": "0.5"}


@pytest.fixture(params=DATABASES)
def database_url(request, new_database_url) -> str:
    """The URL of a new, empty, unmigrated database (SQLite, then PostgreSQL)."""
    return new_database_url(request.param)


@pytest.fixture(scope="session")
def new_migrated_url(postgres, new_database_url, tmp_path_factory):
    """A factory: the URL of a new database of the given kind at the newest revision, a copy
    of one migrated once a session (SQLite: its file; PostgreSQL: ``CREATE DATABASE ...
    TEMPLATE``). Migrating each anew cost this process ~0.1 CPU-s (SQLite) to ~0.14 CPU-s
    (PostgreSQL, and as much again of the cluster's) a test, 138 tests here; a copy <0.01 s.
    The migrations themselves are tested from empty and older databases (test_migrations.py)."""
    templates: dict[str, str] = {}
    admin = sa.create_engine(postgres.url(), isolation_level="AUTOCOMMIT")

    def new(kind: str) -> str:
        if kind not in templates:
            templates[kind] = new_database_url(kind)
            template = Database(templates[kind])
            template.upgrade()
            template.dispose()  # no connection left: SQLite's WAL is merged, PostgreSQL's template is free
        if kind == "postgresql":
            name = "t_" + uuid.uuid4().hex[:12]
            with admin.connect() as connection:
                connection.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {make_url(templates[kind]).database}"))
            return postgres.url(name)
        path = tmp_path_factory.mktemp("sqlite") / "llm-backend.db"
        shutil.copyfile(make_url(templates[kind]).database, path)
        return f"sqlite:///{path}"

    yield new
    admin.dispose()


@pytest.fixture(params=DATABASES)
def database(request, new_migrated_url):
    """A migrated, empty database (SQLite, then PostgreSQL)."""
    db = Database(new_migrated_url(request.param))
    yield db
    db.dispose()


@pytest.fixture(scope="session", params=DATABASES)
def store_server(request, new_database_url, tmp_path_factory):
    """A live server per database kind, with two static keys, audit storage on and the
    expiry sweeper running every half second (tests/storage/test_expiry.py)."""
    url = new_database_url(request.param)
    env = {
        "LLM_BACKEND_DATABASE_URL": url,
        "LLM_BACKEND_API_KEYS": f"{KEY_A},{KEY_B}",
        "LLM_BACKEND_STORE_ALL_CHAT_COMPLETIONS": "true",
        **EXPIRY_SWEEP,
    }
    with LiveServer(tmp_path_factory.mktemp(f"store-{request.param}"), env=env) as live:
        live.database_url = url
        yield live


def sdk(server: LiveServer, key: str) -> openai.OpenAI:
    return clients.sdk(server, api_key=key)


@pytest.fixture
def owner_a(store_server) -> openai.OpenAI:
    return sdk(store_server, KEY_A)


@pytest.fixture
def owner_b(store_server) -> openai.OpenAI:
    return sdk(store_server, KEY_B)


@pytest.fixture
def server_db(store_server):
    """Direct access to the live server's database, for what the API does not show."""
    db = Database(store_server.database_url)
    yield db
    db.dispose()
