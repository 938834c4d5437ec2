"""OpenAI's Admin API served here (issue #40), through the official SDK's admin client
(``OpenAI(admin_api_key=...).admin.organization``): projects are the tenants, a service
account's key reaches its project's objects and nothing else, archiving stops its keys,
admin keys are made and revoked, every change is in the audit log with its actor, and the
organisation's people (users, invites, ...) answer an honest 404. One server for the file."""

from __future__ import annotations

import subprocess
import sys
import time

import openai
import pytest
import sqlalchemy as sa

from tests.conftest import MODEL
from tests.support.batches import chat_lines, file_lines, submit, wait
from tests.support.clients import admin_sdk, keyed_server, sdk
from tests.support.reach import reached

ADMIN, ALICE = "sk-admin-ops", "sk-alice-static"
SECOND_ADMIN = "sk-admin-second"  # of the static project "ops-two", archived by a test


# Sweeps every half second; "modified_abuse_monitoring" keeps a project's objects 3 seconds.
RETENTION = {"LLM_BACKEND_EXPIRY_SWEEP_SECONDS": "0.5", "LLM_BACKEND_DATA_RETENTION_SECONDS": "3"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with keyed_server(tmp_path_factory.mktemp("admin"), [f"alice={ALICE}"], admin_keys=[f"ops={ADMIN}", f"ops-two={SECOND_ADMIN}"], env=RETENTION) as server:
        yield server


@pytest.fixture(scope="module")
def org(live):
    return admin_sdk(live, ADMIN).admin.organization


def _project_with_key(org, name: str):
    project = org.projects.create(name=name)
    account = org.projects.service_accounts.create(project.id, name=f"{name}-bot")
    return project, account


def _audited(org, **filters) -> list:
    return list(org.audit_logs.list(limit=100, **filters).data)


def test_a_service_accounts_key_works_in_its_project_only_until_the_project_is_archived(live, org):
    project, account = _project_with_key(org, "team-a")
    assert account.api_key.value.startswith("sk-llmb-") and account.role == "member"
    team_a = sdk(live, account.api_key.value)
    other_project, other_account = _project_with_key(org, "team-b")
    team_b = sdk(live, other_account.api_key.value)

    completion = team_a.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, store=True
    )
    file = team_a.files.create(file=("notes.txt", b"team a's notes"), purpose="user_data")
    batch = wait(team_a, submit(team_a, chat_lines(1, MODEL)).id)
    assert batch.status == "completed" and file_lines(team_a, batch.output_file_id)[0]["response"]["status_code"] == 200

    # Another key of the same project reaches them; another project's key gets 404 for each.
    second = sdk(live, org.projects.service_accounts.create(project.id, name="second").api_key.value)
    assert second.chat.completions.retrieve(completion.id).id == completion.id
    assert second.files.retrieve(file.id).id == file.id and second.batches.retrieve(batch.id).id == batch.id
    for read, object_id in ((team_b.chat.completions.retrieve, completion.id), (team_b.files.retrieve, file.id),
                            (team_b.batches.retrieve, batch.id)):
        with pytest.raises(openai.NotFoundError):
            read(object_id)
    assert team_b.files.list().data == [] and team_b.batches.list().data == []

    archived = org.projects.archive(project.id)
    assert archived.status == "archived" and archived.archived_at is not None
    for client in (team_a, second):
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    assert team_b.models.list().data  # other projects' keys are untouched
    assert project.id not in [p.id for p in org.projects.list(limit=100)]
    assert project.id in [p.id for p in org.projects.list(limit=100, include_archived=True)]
    with pytest.raises(openai.BadRequestError) as refused:
        org.projects.service_accounts.create(project.id, name="late")
    assert refused.value.code == "project_archived"
    assert org.projects.retrieve(other_project.id).status == "active"


def test_archiving_a_static_admin_keys_project_leaves_the_key_an_admin_key(live, org):
    # Admin keys are the organisation's (OpenAI's model): archiving the project a static one
    # stores in, with no unarchive, locked it out of every admin operation for good (issue #47).
    second = admin_sdk(live, SECOND_ADMIN).admin.organization
    assert org.projects.archive("ops-two").status == "archived"
    assert "ops-two" not in [p.id for p in second.projects.list(limit=100)]
    assert second.projects.create(name="after-archive").name == "after-archive"
    assert _audited(second, event_types=["project.archived"], project_ids=["ops-two"])
    assert sdk(live, SECOND_ADMIN).models.list().data


def test_deleting_a_service_account_revokes_its_keys_and_a_deleted_project_key_stops(live, org):
    project, account = _project_with_key(org, "rotation")
    client = sdk(live, account.api_key.value)
    extra = org.projects.service_accounts.api_keys.create(account.id, project_id=project.id, name="extra")
    extra_client = sdk(live, extra.value)
    assert client.models.list().data and extra_client.models.list().data
    keys = {key.id: key for key in org.projects.api_keys.list(project.id)}
    assert set(keys) == {account.api_key.id, extra.id}
    assert keys[extra.id].owner.service_account.id == account.id and "…" in keys[extra.id].redacted_value
    assert extra.value not in str(keys)

    org.projects.api_keys.delete(extra.id, project_id=project.id)
    with pytest.raises(openai.AuthenticationError):
        extra_client.models.list()
    assert client.models.list().data
    deleted = org.projects.service_accounts.delete(account.id, project_id=project.id)
    assert deleted.deleted is True
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    with pytest.raises(openai.NotFoundError):
        org.projects.service_accounts.retrieve(account.id, project_id=project.id)
    assert org.projects.api_keys.list(project.id).data == []


def test_admin_keys_made_here_are_admin_keys_until_deleted(live, org):
    made = org.admin_api_keys.create(name="automation", expires_in_seconds=3600)
    assert made.value.startswith("sk-llmb-admin-") and made.expires_at is not None
    second = admin_sdk(live, made.value).admin.organization
    assert second.projects.create(name="made-by-automation").name == "made-by-automation"
    assert made.id in [key.id for key in org.admin_api_keys.list(limit=100)]
    assert made.value not in org.admin_api_keys.retrieve(made.id).model_dump_json()
    org.admin_api_keys.delete(made.id)
    with pytest.raises(openai.AuthenticationError):
        second.projects.list()
    with pytest.raises(openai.NotFoundError):
        org.admin_api_keys.retrieve(made.id)
    created = _audited(org, event_types=["project.created"], actor_ids=[made.id])
    assert [entry.project_created.data.name for entry in created] == ["made-by-automation"]


def test_an_api_key_gets_403_on_every_admin_operation_and_each_refusal_is_audited(live, org):
    alice = admin_sdk(live, ALICE).admin.organization
    for call in (lambda: alice.projects.list(), lambda: alice.projects.create(name="x"),
                 lambda: alice.admin_api_keys.create(name="x"), lambda: alice.audit_logs.list()):
        with pytest.raises(openai.PermissionDeniedError):
            call()
    with pytest.raises(openai.AuthenticationError):
        admin_sdk(live, "sk-wrong").admin.organization.projects.list()
    # Refusals are written beside their answers (http/refused_logins.RefusedLogins), each
    # append chained to the one before (storage/audit_chain.py): read once all have landed.
    deadline = time.monotonic() + 10
    while True:
        refused = _audited(org, event_types=["login.failed"])
        by_alice = sum(entry.actor is not None and entry.actor.api_key.id == "alice" for entry in refused)
        if (by_alice >= 4 and any(entry.actor is None for entry in refused)) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert by_alice >= 4
    assert any(entry.actor is None for entry in refused)  # no key found: no actor
    assert ALICE not in str([entry.model_dump() for entry in refused])


def test_every_change_is_in_the_audit_log_once_with_its_actor(live, org):
    project = org.projects.create(name="audited")
    org.projects.update(project.id, name="audited-renamed")
    account = org.projects.service_accounts.create(project.id, name="bot")
    org.projects.service_accounts.update(account.id, project_id=project.id, role="owner")
    key = org.projects.service_accounts.api_keys.create(account.id, project_id=project.id)
    org.projects.api_keys.delete(key.id, project_id=project.id)
    org.projects.service_accounts.delete(account.id, project_id=project.id)
    org.projects.archive(project.id)
    org.projects.archive(project.id)  # archiving twice changes nothing: logged once
    entries = _audited(org, project_ids=[project.id])
    assert [entry.type for entry in reversed(entries)] == [
        "project.created", "project.updated", "service_account.created", "api_key.created", "service_account.updated",
        "api_key.created", "api_key.deleted", "service_account.deleted", "project.archived",
    ]
    assert {entry.actor.api_key.id for entry in entries} == {"ops"}
    assert entries[0].project.id == project.id and entries[-1].project_created.data.name == "audited"
    newest, rest = org.audit_logs.list(project_ids=[project.id], limit=1), entries[1:]
    assert newest.has_more and [e.id for e in org.audit_logs.list(project_ids=[project.id], after=newest.data[0].id, limit=100)] == [e.id for e in rest]


def test_the_audit_log_cannot_be_altered(live, org):
    """Append-only in the database itself: an UPDATE, a DELETE or an INSERT OR REPLACE over an
    entry fails whoever runs it; and the service's entries verify (``audit verify``, under the
    key the service keeps in its data directory)."""
    org.projects.create(name="before-the-check")
    engine = sa.create_engine(f"sqlite:///{live.workdir / 'data' / 'llm-backend.db'}")
    replace = ("INSERT OR REPLACE INTO audit_log (seq, id, type, effective_at, details) "
               "SELECT seq, id, 'project.deleted', effective_at, details FROM audit_log LIMIT 1")
    try:
        for statement in ("UPDATE audit_log SET type = 'project.deleted'", "DELETE FROM audit_log", replace):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                with engine.begin() as connection:
                    connection.execute(sa.text(statement))
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() > 0
    finally:
        engine.dispose()
    assert "project.deleted" not in {entry.type for entry in _audited(org)}
    verified = subprocess.run([sys.executable, "-m", "llm_backend", "audit", "verify"], capture_output=True, text=True,
                              env=live.env, timeout=120)
    assert verified.returncode == 0 and verified.stdout.startswith("audit log OK: "), verified.stderr


@pytest.mark.parametrize("call", [
    lambda org: org.users.list(),
    lambda org: org.invites.create(email="someone@example.com", role="reader"),
    lambda org: org.projects.users.list("alice"),
    lambda org: org.roles.list(),
    lambda org: org.groups.list(),
    lambda org: org.certificates.list(),
], ids=["users", "invites", "project users", "roles", "groups", "certificates"])
def test_the_organisations_people_answer_an_honest_404(org, call):
    with pytest.raises(openai.NotFoundError) as refused:
        call(org)
    assert refused.value.code == "no_people" and "no users" in refused.value.message


def test_static_keys_are_projects_and_unknown_ids_answer_404(org):
    assert {"alice", "ops"} <= {p.id for p in org.projects.list(limit=100)}
    assert org.projects.retrieve("alice").name == "alice"
    for call in (lambda: org.projects.retrieve("proj_missing"), lambda: org.projects.service_accounts.list("proj_missing"),
                 lambda: org.projects.list(after="proj_missing"), lambda: org.admin_api_keys.retrieve("key_missing")):
        with pytest.raises(openai.NotFoundError):
            call()


def _stored(client) -> dict:
    """A chat completion, a file and a conversation of ``client``'s project."""
    return {
        "completion": client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, store=True
        ).id,
        "file": client.files.create(file=("kept.txt", b"kept or not"), purpose="user_data").id,
        "conversation": client.conversations.create().id,
    }


def test_a_projects_stored_objects_are_deleted_after_its_data_retention_period(live, org):
    short, short_account = _project_with_key(org, "short-retention")
    zero, zero_account = _project_with_key(org, "zero-retention")
    kept, kept_account = _project_with_key(org, "default-retention")
    assert org.projects.data_retention.retrieve(short.id).type == "organization_default"
    org.projects.data_retention.update(short.id, retention_type="modified_abuse_monitoring")  # 3 s here
    org.projects.data_retention.update(zero.id, retention_type="zero_data_retention")
    with pytest.raises(openai.NotFoundError):  # the organisation has none set: kept until deleted
        org.data_retention.retrieve()
    clients = {name: sdk(live, account.api_key.value) for name, account in
               (("short", short_account), ("zero", zero_account), ("kept", kept_account))}
    stored = {name: _stored(client) for name, client in clients.items()}
    assert reached(clients["short"], stored["short"]) == dict.fromkeys(stored["short"], True)  # within its 3 s
    deadline = time.monotonic() + 15
    # any() of each dict's values: a dict_values is truthy whatever it holds (it waited out the 15 s).
    while any(any(reached(clients[name], stored[name]).values()) for name in ("short", "zero")) and time.monotonic() < deadline:
        time.sleep(0.25)
    for name in ("short", "zero"):
        assert reached(clients[name], stored[name]) == dict.fromkeys(stored[name], False), name
        assert clients[name].files.list().data == []
    assert reached(clients["kept"], stored["kept"]) == dict.fromkeys(stored["kept"], True)
    changes = [e.project_updated.changes_requested.model_dump(exclude_none=True)
               for e in _audited(org, project_ids=[short.id], event_types=["project.updated"])]
    assert changes == [{"data_retention": "modified_abuse_monitoring"}]


def test_a_hosted_tool_turned_off_for_a_project_is_refused_there_only(live, org):
    project, account = _project_with_key(org, "no-file-search")
    _, other_account = _project_with_key(org, "file-search")
    permissions = org.projects.hosted_tool_permissions.update(project.id, file_search={"enabled": False})
    assert permissions.file_search.enabled is False and permissions.mcp.enabled is True
    assert org.projects.hosted_tool_permissions.retrieve(project.id).file_search.enabled is False
    tools = [{"type": "file_search", "vector_store_ids": ["vs_none"]}]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(live, account.api_key.value).responses.create(model=MODEL, input="Hi", tools=tools, max_output_tokens=16)
    assert (refused.value.code, refused.value.param) == ("tool_not_permitted", "tools[0].type")
    with pytest.raises(openai.NotFoundError):  # another project may search: its unknown store is 404
        sdk(live, other_account.api_key.value).responses.create(model=MODEL, input="Hi", tools=tools, max_output_tokens=16)
    assert sdk(live, account.api_key.value).responses.create(model=MODEL, input="Hi", max_output_tokens=16).output  # answered
    [changed] = _audited(org, project_ids=[project.id], event_types=["project.updated"])
    assert changed.project_updated.changes_requested.model_dump(exclude_none=True) == {"hosted_tool_permissions": {"file_search": False}}


def test_the_organisations_data_retention_is_set_and_shown(org):
    """Last in the file: from here, every project of this server keeps its objects 3 s."""
    assert org.data_retention.update(retention_type="modified_abuse_monitoring").type == "modified_abuse_monitoring"
    assert org.data_retention.retrieve().type == "modified_abuse_monitoring"
    [changed] = _audited(org, event_types=["organization.updated"])
    assert "modified_abuse_monitoring" in changed.model_dump_json() and changed.actor.api_key.id == "ops"


def test_a_spend_threshold_beyond_what_is_kept_is_refused_and_nothing_is_stored(org):
    # Schemathesis sent 9872037824053358592 (past a 64-bit column): a 500 before.
    project = org.projects.create(name="thresholds")
    channel = {"type": "email", "recipients": ["ops@example.com"]}
    for change in (
        lambda amount: org.projects.spend_alerts.create(
            project.id, threshold_amount=amount, currency="USD", interval="month", notification_channel=channel
        ),
        lambda amount: org.projects.spend_limit.update(project.id, threshold_amount=amount, currency="USD", interval="month"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            change(2**63)
        assert caught.value.body["param"] == "threshold_amount" and caught.value.body["code"] == "integer_above_max_value"
    assert list(org.projects.spend_alerts.list(project.id).data) == []
    with pytest.raises(openai.NotFoundError):
        org.projects.spend_limit.retrieve(project.id)
    assert org.projects.spend_alerts.create(
        project.id, threshold_amount=2**63 - 1, currency="USD", interval="month", notification_channel=channel
    ).threshold_amount == 2**63 - 1
