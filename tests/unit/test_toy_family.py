"""Adding a family touches only its own files and one line each for its controller module,
its store and itself (issue #48): a toy family (tests/fixtures/toy_family/) registered so,
served by the real app with its lifespan run."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from llm_backend.app import create_app, families
from llm_backend.settings import Settings
from llm_backend.storage import STORES, Database, default_url
from tests.fixtures.toy_family import FAMILY


@pytest.fixture
def toy_app(monkeypatch, tmp_path):
    # Two of the three registration lines; the controller module's is in the family's
    # fragment (x-openapi-router-controller in tests/fixtures/toy_family/openapi.yaml).
    monkeypatch.setitem(STORES, "toy_notes", "tests.fixtures.toy_family.store:ToyNoteStore")
    monkeypatch.setattr(families, "FAMILIES", (*families.FAMILIES, FAMILY))
    app = create_app(Settings(local_models=False, data_dir=tmp_path))
    with TestClient(app, base_url="http://localhost") as http:  # the lifespan runs: the family's task too
        yield http, Database(default_url(tmp_path))


def test_a_toy_familys_operation_writes_its_store_and_its_task_sees_it(toy_app):
    http, database = toy_app
    written = http.post("/toy/notes", json={"text": "hello"})
    assert written.status_code == 200
    note = written.json()
    assert note["text"] == "hello" and note["seen"] is False
    assert database.toy_notes.get(note["id"])["text"] == "hello"
    deadline = time.monotonic() + 10
    while not database.toy_notes.get(note["id"])["seen"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert database.toy_notes.get(note["id"])["seen"] is True


def test_a_toy_familys_operation_is_checked_by_its_own_schema(toy_app):
    http, _ = toy_app
    refused = http.post("/toy/notes", json={"text": "x" * 101})
    assert refused.status_code == 400


def test_a_toy_familys_operation_is_in_the_extensions_page(toy_app):
    http, _ = toy_app
    assert "/toy/notes" in http.get("/docs/extensions.json").json()["paths"]


def test_without_its_registration_the_toy_family_is_not_served(tmp_path):
    app = create_app(Settings(local_models=False, data_dir=tmp_path))
    with TestClient(app, base_url="http://localhost") as http:
        assert http.post("/toy/notes", json={"text": "hello"}).status_code == 404
