"""Adding a family touches its own folder and one line in ``FAMILIES`` (issue #58): a toy
family (tests/fixtures/toy_family/: a model-backed operation, a store with its migration,
settings, an error, background work) registered by that one line and nothing else, served
by the real app with its lifespan run, its table made by its own Alembic revision in the
one history (at start-up and by ``llm-backend db upgrade``)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pydantic
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient
from typer.testing import CliRunner

from llm_backend import families
from llm_backend.app import create_app
from llm_backend.auth import ANONYMOUS
from llm_backend.cli import app as cli
from llm_backend.settings import Settings
from llm_backend.storage import Database, default_url
from tests.fixtures.toy_family import FAMILY
from tests.fixtures.toy_family.store import ToyNoteStore
from tests.support.server import shared_cache_settings

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "toy_family"


@pytest.fixture
def registered(monkeypatch):
    """The family's one registration line, and nothing else."""
    monkeypatch.setattr(families, "FAMILIES", (*families.FAMILIES, FAMILY))


def _served(tmp_path, **settings):
    # The run's parsed OpenAI document and model files (tests/support/server.py): each app
    # parsing the 3 MB YAML for itself cost ~1.5 CPU-s, seven apps here.
    app = create_app(Settings(data_dir=tmp_path, **{**shared_cache_settings(), **settings}))
    return TestClient(app, base_url="http://localhost")


@pytest.fixture
def toy_app(registered, tmp_path):
    with _served(tmp_path, local_models=False) as http:  # the lifespan runs: the family's task too
        yield http, Database(default_url(tmp_path))


def test_the_toy_familys_parts_are_all_in_its_folder():
    modules = [module.partition(":")[0] for module in FAMILY.controllers.values()] + [FAMILY.settings.__module__]
    paths = [Path(importlib.import_module(module).__file__) for module in modules] + [FAMILY.document, FAMILY.migrations]
    assert all(path.resolve().is_relative_to(FOLDER) for path in paths), paths


def test_a_toy_familys_operation_writes_its_store_and_its_task_sees_it(toy_app):
    http, database = toy_app
    written = http.post("/toy/notes", json={"text": "hello"})
    assert written.status_code == 200
    note = written.json()
    assert note["text"] == "hello" and note["seen"] is False
    store = database.store(ToyNoteStore)
    assert store.get(ANONYMOUS, note["id"])["text"] == "hello"
    deadline = time.monotonic() + 10
    while not store.get(ANONYMOUS, note["id"])["seen"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.get(ANONYMOUS, note["id"])["seen"] is True


def test_a_toy_familys_table_is_made_by_its_own_revision_in_the_one_history(toy_app):
    _, database = toy_app
    with database.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["toy_notes_0001"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_familys_revisions_join_the_one_history_on_either_database(kind, new_database_url):
    database = Database(new_database_url(kind), migrations=[FAMILY.migrations])
    try:
        database.upgrade()
        assert database.revision() == "toy_notes_0001"
        note = database.store(ToyNoteStore).add("owner", "hello", None, 10)
        assert database.store(ToyNoteStore).get("owner", note["id"])["text"] == "hello"
    finally:
        database.dispose()


def test_db_upgrade_applies_a_registered_familys_revision(registered, tmp_path):
    ran = CliRunner().invoke(cli, ["db", "upgrade"], env={"LLM_BACKEND_DATA_DIR": str(tmp_path)})
    assert ran.exit_code == 0, ran.output
    assert "database at revision toy_notes_0001" in ran.output


def test_a_toy_familys_setting_bounds_its_notes_and_its_error_says_so(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_BACKEND_TOY_NOTES_PER_OWNER", "1")
    with _served(tmp_path, local_models=False) as http:
        assert http.post("/toy/notes", json={"text": "one"}).status_code == 200
        refused = http.post("/toy/notes", json={"text": "two"})
    assert refused.status_code == 400
    assert refused.json() == {"error": {
        "message": "You keep 1 toy notes already: the most one owner may keep.",
        "type": "invalid_request_error", "param": "text", "code": "toy_notes_full",
    }}


def test_a_bad_value_of_a_toy_familys_setting_stops_the_start(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_BACKEND_TOY_NOTES_PER_OWNER", "0")
    with pytest.raises(pydantic.ValidationError, match="toy_notes_per_owner"):
        create_app(Settings(data_dir=tmp_path, local_models=False))


@pytest.fixture
def with_models(registered, tmp_path):
    """The toy family served with the local models (SmolLM2, loaded on first use)."""
    with _served(tmp_path, model_load="lazy") as http:
        yield http


def test_a_toy_familys_model_backed_operation_asks_the_model(with_models):
    titled = with_models.post("/toy/notes", json={"text": "the cat sat on the mat", "model": "smollm2"})
    unknown = with_models.post("/toy/notes", json={"text": "x", "model": "no-such-model"})
    assert titled.status_code == 200, titled.text
    assert isinstance(titled.json()["title"], str) and titled.json()["title"].strip()
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


def test_a_toy_familys_own_local_model_is_listed_and_answers_by_its_id(with_models):
    assert "toy-words" in [model["id"] for model in with_models.get("/v1/models").json()["data"]]
    titled = with_models.post("/toy/notes", json={"text": "the cat sat on the mat", "model": "toy-words"})
    assert titled.json()["title"] == "The Cat Sat"


def test_a_toy_familys_bodies_are_bounded_by_its_own_limit(toy_app):
    http, _ = toy_app
    refused = http.post("/toy/notes", json={"text": "x" * 2000})  # 2 kB: far below max_body_bytes
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "request_too_large"


def test_a_toy_familys_operation_is_checked_by_its_own_schema(toy_app):
    http, _ = toy_app
    refused = http.post("/toy/notes", json={"text": "x" * 101})
    assert refused.status_code == 400


def test_a_toy_familys_operation_is_in_the_extensions_page(toy_app):
    http, _ = toy_app
    assert "/toy/notes" in http.get("/docs/extensions.json").json()["paths"]


def test_without_its_registration_the_toy_family_is_not_served(tmp_path):
    with _served(tmp_path, local_models=False) as http:
        assert http.post("/toy/notes", json={"text": "hello"}).status_code == 404
    assert Database(default_url(tmp_path)).revision() != "toy_notes_0001"

