"""Revision 0013 (projects are the tenants) on a database made by the version before it.

The version before is main at 799f06c, run for real: its own server and its own
``llm-backend keys`` (from ``git archive``), with three tenants - a named static key, an
unnamed static key and a managed key - each storing a chat completion, a file and a
conversation through the API. Then this version starts on the same database: each tenant
still sees its objects, and nobody else does (issue #40). A direct test on both databases
checks the rows: one project per tenant, managed keys' objects renamed to their project.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timezone

import openai
import sqlalchemy as sa

from llm_backend.auth import derived_owner
from llm_backend.storage import Database
from llm_backend.storage.api_keys import key_digest
from tests.conftest import MODEL
from tests.storage.test_migrations import at_revision
from tests.support.clients import admin_sdk, sdk
from tests.support.reach import reached
from tests.support.server import LiveServer

BEFORE_PROJECTS = "799f06c"
STATIC_KEYS = "alice=sk-alice-static,sk-unnamed-bob"
ADMIN = "ops=sk-admin-ops"


def _checkout(commit: str, into) -> None:
    """The package and spec of ``commit``, as files (``git archive``), to run as that version."""
    archive = subprocess.run(["git", "archive", commit, "llm_backend", "openapi"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def _tenant_objects(client: openai.OpenAI) -> dict[str, str]:
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, store=True
    )
    file = client.files.create(file=("note.txt", b"kept across the upgrade"), purpose="user_data")
    conversation = client.conversations.create(metadata={"who": "tenant"})
    return {"completion": completion.id, "file": file.id, "conversation": conversation.id}


def test_each_tenant_of_the_version_before_projects_keeps_its_objects_and_only_them(new_database_url, tmp_path):
    url = new_database_url("postgresql")
    old = tmp_path / "old"
    old.mkdir()
    _checkout(BEFORE_PROJECTS, old)
    env = {"LLM_BACKEND_DATABASE_URL": url, "LLM_BACKEND_API_KEYS": STATIC_KEYS, "LLM_BACKEND_ADMIN_KEYS": ADMIN}
    made = subprocess.run(
        [sys.executable, "-m", "llm_backend", "keys", "create", "--name", "carol"],
        cwd=old, env={**LiveServer(tmp_path / "cli").env, **env}, capture_output=True, text=True, timeout=120, check=True,
    )
    keys = {"alice": "sk-alice-static", "bob": "sk-unnamed-bob", "carol": made.stdout.strip()}
    workdir = tmp_path / "server"  # one data directory: the files' bytes stay where they were
    with LiveServer(workdir, env=env, cwd=old) as before:
        objects = {name: _tenant_objects(sdk(before, key)) for name, key in keys.items()}

    # This version only reads what the old one stored: it loads no model (~1 CPU-s less).
    with LiveServer(workdir, env={**env, "LLM_BACKEND_MODEL_LOAD": "lazy"}) as after:
        for name, key in keys.items():
            client = sdk(after, key)
            for other, owned in objects.items():
                expected = {kind: name == other for kind in owned}
                assert reached(client, owned) == expected, (name, other)
            assert [c.id for c in client.chat.completions.list()] == [objects[name]["completion"]]
            assert [f.id for f in client.files.list()] == [objects[name]["file"]]
        # Each tenant is a project the Admin API lists: the static keys' owners, and a
        # project made for the managed key (named after it).
        projects = {p.name: p.id for p in admin_sdk(after, "sk-admin-ops").admin.organization.projects.list()}
        assert projects["alice"] == "alice" and projects[derived_owner("sk-unnamed-bob")] == derived_owner("sk-unnamed-bob")
        assert projects["carol"].startswith("proj_")


def _fill_three_tenants(db: Database) -> None:
    """Rows of revision 0012 (plain SQL): objects of a static name, an unnamed key's digest
    and a managed key, and their usage."""
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with db.engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO api_keys (id, digest, name, description, created_at, revoked) VALUES ('apikey_carol', :d, 'carol', '', :now, :f)"),
            {"d": key_digest("sk-llmb-carol"), "now": now, "f": False},
        )
        for owner in ("alice", derived_owner("sk-unnamed-bob"), "apikey_carol"):
            connection.execute(
                sa.text("INSERT INTO conversations (id, owner, created_at, metadata, updated_at) VALUES (:id, :owner, 1, '{}', :now)"),
                {"id": f"conv_{owner}", "owner": owner, "now": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO usage (minute, operation, owner, model, requests, input_tokens, cached_tokens, output_tokens)"
                    " VALUES (60, 'completions', :owner, 'm', 1, 3, 0, 2)"
                ),
                {"owner": owner},
            )


def test_revision_0013_gives_each_tenant_a_project(database_url):
    at_revision(database_url, "0012", _fill_three_tenants)
    db = Database(database_url)
    db.upgrade()
    try:
        carol = asyncio.run(db.api_keys.authenticate("sk-llmb-carol"))
        assert carol.id == "apikey_carol" and carol.project_id.startswith("proj_")
        bob = derived_owner("sk-unnamed-bob")
        for owner in ("alice", bob, carol.project_id):
            found = db.conversations.get(owner, f"conv_{'apikey_carol' if owner == carol.project_id else owner}")
            assert found is not None
        assert db.conversations.get("apikey_carol", "conv_apikey_carol") is None
        with db.engine.connect() as connection:
            projects = dict(connection.execute(sa.text("SELECT id, static FROM projects")).all())
            usage = sorted(connection.execute(sa.text("SELECT owner, project_id FROM usage")).all())
            accounts = connection.execute(sa.text("SELECT project_id, name FROM service_accounts")).all()
        assert {key: bool(value) for key, value in projects.items()} == {"alice": True, bob: True, carol.project_id: False}
        assert usage == sorted([("alice", "alice"), (bob, bob), ("apikey_carol", carol.project_id)])
        assert accounts == [(carol.project_id, "carol")]
    finally:
        db.dispose()
