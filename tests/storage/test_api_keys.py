"""Managed API keys: the CLI, hashed storage, authentication beside the static keys."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys

import openai
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from llm_backend.auth import ANONYMOUS, Authenticator, Keyring, Principal
from llm_backend.cli import app
from llm_backend.errors import OpenAIError
from tests.conftest import MODEL
from tests.storage.conftest import KEY_A, sdk


def cli(database_url: str, *args: str):
    """The ``llm-backend keys`` command, run in-process (the entry point is run for real once)."""
    return CliRunner().invoke(app, ["keys", *args], env={"LLM_BACKEND_DATABASE_URL": database_url})


def test_cli_creates_a_key_printed_once_and_stored_only_as_its_sha256(database_url):
    env = {**os.environ, "LLM_BACKEND_DATABASE_URL": database_url}
    created = subprocess.run(
        [sys.executable, "-m", "llm_backend", "keys", "create", "--name", "ci", "--description", "for the CI job"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sk-llmb-") and len(key) > 40
    listed = cli(database_url, "list")
    assert "ci" in listed.stdout and "for the CI job" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = [tuple(map(str, row)) for row in connection.execute(sa.text("SELECT * FROM api_keys"))]
    engine.dispose()
    assert not any(key in value for row in rows for value in row)
    assert rows[0][1] == hashlib.sha256(key.encode()).hexdigest()


def test_cli_revokes_a_key_by_id(database_url):
    cli(database_url, "create", "--name", "temp")
    key_id = cli(database_url, "list").stdout.split("\t")[0]
    assert cli(database_url, "revoke", key_id).exit_code == 0
    assert "revoked" in cli(database_url, "list").stdout
    assert cli(database_url, "revoke", "apikey_nonexistent").exit_code == 1


def test_managed_keys_are_enforced_once_one_exists(database):
    authenticator = Authenticator(Keyring([]), database.api_keys)
    assert asyncio.run(authenticator.authenticate(None)).owner == ANONYMOUS
    info, key = database.api_keys.create("first")
    database.api_keys._active = None  # forget the few-seconds cache of "any keys?"
    with pytest.raises(OpenAIError) as raised:
        asyncio.run(authenticator.authenticate(None))
    assert raised.value.status == 401
    with pytest.raises(OpenAIError):
        asyncio.run(authenticator.authenticate("Bearer sk-llmb-wrong"))
    principal = asyncio.run(authenticator.authenticate(f"Bearer {key}"))
    assert (principal.owner, principal.key) == (info.project_id, info.id)


def test_revoking_every_managed_key_keeps_the_service_closed(database):
    """Issue #33: with no static keys, revoking the last managed key once switched
    authentication off, and everyone was let in as the admin tenant."""
    authenticator = Authenticator(Keyring([]), database.api_keys)
    info, key = database.api_keys.create("only")
    database.api_keys._active = None
    assert asyncio.run(authenticator.authenticate(f"Bearer {key}")).key == info.id
    assert database.api_keys.revoke(info.id)
    database.api_keys._active = None  # as a replica starting after the revocation
    for authorization in (None, f"Bearer {key}", "Bearer anything"):
        with pytest.raises(OpenAIError) as raised:
            asyncio.run(authenticator.authenticate(authorization))
        assert raised.value.status == 401


def test_a_live_service_whose_last_key_is_revoked_by_the_cli_stays_closed(database_url, start_server):
    created = cli(database_url, "create", "--name", "only")
    key = created.stdout.strip()
    # Only keys are at stake: no model is loaded (a start without the engine's ~1 s).
    live = start_server(env={"LLM_BACKEND_DATABASE_URL": database_url, "LLM_BACKEND_MODEL_LOAD": "lazy"})
    assert sdk(live, key).models.list().data
    key_id = next(line.split()[0] for line in cli(database_url, "list").stdout.splitlines() if "only" in line)
    assert cli(database_url, "revoke", key_id).exit_code == 0
    for api_key in (key, "anything"):
        with pytest.raises(openai.AuthenticationError):
            sdk(live, api_key).models.list()
    live.stop()
    live.start()  # a new process reads the revoked key from the database
    with pytest.raises(openai.AuthenticationError):
        sdk(live, "anything").models.list()


def test_managed_key_works_beside_static_keys_and_owns_its_completions(store_server, server_db, owner_a):
    info, key = server_db.api_keys.create("managed", "test")
    managed = sdk(store_server, key)
    created = managed.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, store=True
    )
    assert managed.chat.completions.retrieve(created.id).id == created.id
    with pytest.raises(openai.NotFoundError):
        owner_a.chat.completions.retrieve(created.id)
    assert next(k for k in server_db.api_keys.all() if k.id == info.id).last_used_at is not None


def test_revoked_key_is_refused(store_server, server_db):
    info, key = server_db.api_keys.create("to revoke")
    client = sdk(store_server, key)
    client.chat.completions.list()
    assert server_db.api_keys.revoke(info.id)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.list()


def test_unknown_key_is_refused_and_static_keys_still_work(store_server):
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk(store_server, "sk-not-a-key").chat.completions.list()
    assert raised.value.code == "invalid_api_key"
    assert sdk(store_server, KEY_A).chat.completions.list().object == "list"


def test_a_key_made_in_place_of_a_revoked_one_inherits_nothing(store_server, server_db):
    """A key made by the CLI without a project gets a project of its own: a new key of the
    same name is a new tenant."""
    old, old_key = server_db.api_keys.create("rotated")
    created = sdk(store_server, old_key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, store=True
    )
    assert server_db.api_keys.revoke(old.id)
    new, new_key = server_db.api_keys.create("rotated")
    successor = sdk(store_server, new_key)
    assert new.id != old.id and successor.chat.completions.list().data == []
    with pytest.raises(openai.NotFoundError):
        successor.chat.completions.retrieve(created.id)


def test_a_key_made_in_a_project_reaches_the_objects_of_its_project(store_server, server_db):
    """``keys create --project``: the way to rotate a managed key is another key of its project."""
    old, old_key = server_db.api_keys.create("rotated")
    created = sdk(store_server, old_key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, store=True
    )
    assert server_db.api_keys.revoke(old.id)
    new, new_key = server_db.api_keys.create("rotated", project_id=old.project_id)
    assert sdk(store_server, new_key).chat.completions.retrieve(created.id).id == created.id


def test_cli_makes_a_key_in_a_given_project_only_if_it_is_active(database_url):
    made = cli(database_url, "create", "--name", "first")
    project = next(line.split()[-1] for line in made.stderr.splitlines() if line.startswith("project:"))
    assert cli(database_url, "create", "--name", "second", "--project", project).exit_code == 0
    assert cli(database_url, "list").stdout.count(project) == 2
    assert cli(database_url, "create", "--name", "third", "--project", "proj_nonexistent").exit_code == 1


def test_cli_makes_an_admin_key_and_every_cli_change_is_in_the_audit_log(database_url):
    """Keys made, changed and revoked on the command line are changes like the Admin API's
    (issue #40): each in the audit log once, the CLI its actor."""
    admin = cli(database_url, "create", "--name", "ops", "--admin")
    assert admin.exit_code == 0 and admin.stdout.strip().startswith("sk-llmb-admin-")
    made = cli(database_url, "create", "--name", "ci")
    key_id = next(line.split()[-1] for line in made.stderr.splitlines() if line.startswith("id:"))
    assert cli(database_url, "update", key_id, "--rpm", "5").exit_code == 0
    assert cli(database_url, "revoke", key_id).exit_code == 0
    assert cli(database_url, "revoke", key_id).exit_code == 0  # already revoked: logged once
    assert "admin" in cli(database_url, "list").stdout
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        logged = connection.execute(sa.text("SELECT type, actor_id, resource_id FROM audit_log ORDER BY seq")).all()
    engine.dispose()
    assert [(kind, actor) for kind, actor, _ in logged] == [
        ("tenant.admin_api_key.created", "llm-backend-cli"), ("api_key.created", "llm-backend-cli"),
        ("api_key.updated", "llm-backend-cli"), ("api_key.deleted", "llm-backend-cli"),
    ]
    assert [resource for *_, resource in logged][1:] == [key_id] * 3


def test_a_batchs_creator_is_let_in_only_while_a_request_of_its_key_would_be(database):
    """Issue #47: a batch's lines run as the key that created it (``Authenticator.holder``,
    named as ``Principal.key`` names it), until that key is revoked, dropped from the
    settings, or its project archived."""
    run = asyncio.run
    database.projects.ensure_static(["alice", "ops"])
    keyring = Keyring(["alice=sk-alice-holder"], ["ops=sk-ops-holder"])
    with_alice = Authenticator(keyring, database.api_keys, database.projects)
    info, _ = database.api_keys.create("batcher")
    managed = run(with_alice.holder(info.project_id, info.id))
    assert (managed.owner, managed.key) == (info.project_id, info.id)
    assert run(with_alice.holder("alice", "alice")) == Principal("alice")
    assert run(with_alice.holder("alice", None)) == Principal("alice")  # a batch made before creators were kept
    assert run(with_alice.holder(ANONYMOUS, ANONYMOUS)) is None  # keys exist: the keyless tenant is gone
    # Alice's key taken out of the settings (a restart without it): her batches stop.
    assert run(Authenticator(Keyring([]), database.api_keys, database.projects).holder("alice", "alice")) is None
    assert database.api_keys.revoke(info.id)
    assert run(with_alice.holder(info.project_id, info.id)) is None
    database.projects.archive("alice")
    assert run(with_alice.holder("alice", "alice")) is None and run(with_alice.holder("alice", None)) is None
    database.projects.archive("ops")  # an admin key is the organisation's: its project's archive does not stop it
    assert run(with_alice.holder("ops", "ops")) == Principal("ops", admin=True)


def test_a_keyless_services_batches_run_while_it_stays_keyless(database):
    keyless = Authenticator(Keyring([]), database.api_keys, database.projects)
    assert asyncio.run(keyless.holder(ANONYMOUS, ANONYMOUS)) == Principal(ANONYMOUS, admin=True)
    database.api_keys.create("first")
    database.api_keys._active = None  # forget the few-seconds cache of "any keys?"
    assert asyncio.run(keyless.holder(ANONYMOUS, ANONYMOUS)) is None
