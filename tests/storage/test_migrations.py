"""The schema is owned by the migrations: an existing database upgrades without loss."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from llm_backend.storage import Database, migrate
from llm_backend.storage.api_keys import key_digest

HEAD = migrate.HEAD

OLD_COMPLETION = {
    "id": "chatcmpl-from-0001",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "smollm2",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


def _fill_revision_0001(db: Database) -> None:
    """Rows as the 0001 schema held them, written with plain SQL (not today's models)."""
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO chat_completions (id, owner, model, created, request, response, metadata, stored_at, updated_at) "
                "VALUES (:id, 'key-0', 'smollm2', 1700000000, :request, :response, :metadata, :now, :now)"
            ),
            {
                "id": OLD_COMPLETION["id"],
                "request": json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "store": True}),
                "response": json.dumps(OLD_COMPLETION),
                "metadata": json.dumps({"project": "old"}),
                "now": now,
            },
        )
        connection.execute(
            sa.text(
                "INSERT INTO api_keys (id, digest, name, description, created_at, revoked) "
                "VALUES ('apikey_old', :digest, 'old key', '', :now, :revoked)"
            ),
            {"digest": key_digest("sk-llmb-old"), "now": now, "revoked": False},
        )


def at_revision(url: str, revision: str, fill) -> None:
    """The database at ``url`` brought to ``revision`` only, and ``fill(db)`` as that version would."""
    old = Database(url)
    old.upgrade(revision)
    fill(old)
    old.dispose()


def test_database_from_revision_0001_upgrades_without_loss(database_url):
    at_revision(database_url, "0001", _fill_revision_0001)
    db = Database(database_url)
    db.upgrade()
    try:
        assert db.revision() == HEAD
        stored = db.chat_completions.get("key-0", OLD_COMPLETION["id"])
        assert stored == {**OLD_COMPLETION, "metadata": {"project": "old"}}
        assert db.chat_completions.status(OLD_COMPLETION["id"]) == ("completed", True)
        # The metadata filter of 0002 finds the old row: its pairs were backfilled.
        page = db.chat_completions.list("key-0", metadata={"project": "old"})
        assert [item["id"] for item in page.data] == [OLD_COMPLETION["id"]]
        assert asyncio.run(db.api_keys.authenticate("sk-llmb-old")).id == "apikey_old"
    finally:
        db.dispose()


def test_upgrade_of_an_up_to_date_database_changes_nothing(database):
    database.chat_completions.list("anyone")
    database.upgrade()
    assert database.revision() == HEAD


def test_head_is_alembics_own():
    from alembic.script import ScriptDirectory

    # A new migration moves HEAD (storage/migrate.py) with it.
    assert ScriptDirectory.from_config(migrate._config()).get_current_head() == HEAD


def test_a_database_at_head_starts_without_loading_alembic(database_url):
    first = Database(database_url)
    first.upgrade()  # a new database: Alembic builds it
    first.dispose()
    script = (
        "import sys\n"
        "from llm_backend.storage import Database\n"
        f"database = Database({database_url!r})\n"
        "database.upgrade()\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'alembic'}))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "[]"


def _replicas_upgrading_together(url: str, count: int = 4, **options) -> list[str | None]:
    """``count`` replicas upgrading the PostgreSQL database at ``url`` at the same moment
    (each its own engine); the revision each finds after, and no failure."""
    import threading

    from llm_backend.storage import migrate

    engines = [sa.create_engine(url) for _ in range(count)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def replica(engine) -> None:
        start.wait()
        try:
            migrate.upgrade(engine, **options)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=replica, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    heads = [migrate.current_revision(engine) for engine in engines]
    for engine in engines:
        engine.dispose()
    assert not failures, failures
    return heads


def test_replicas_starting_together_migrate_once(new_database_url):
    """Four replicas upgrading one new PostgreSQL database at the same moment: one runs the
    migrations, the others wait and find the schema at head (none fails on a half-built one)."""
    heads = set(_replicas_upgrading_together(new_database_url("postgresql")))
    assert len(heads) == 1 and None not in heads


def test_events_kept_in_0007s_column_move_to_their_table_and_back(database_url):
    """A background response's events, kept as one JSON list before 0010, are streamed from
    ``response_events`` after it; a downgrade puts the list back."""
    kept = [{"type": "response.created", "sequence_number": 0}, {"type": "response.completed", "sequence_number": 1}]
    old = Database(database_url)
    old.upgrade("0008")
    with old.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO responses (id, owner, model, status, created_at, response, request, input_items, background, events, updated_at) "
                "VALUES ('resp_old', 'key-0', 'smollm2', 'completed', 1700000000, :response, '{}', '[]', :true, :events, :now)"
            ),
            {
                "response": json.dumps({"id": "resp_old", "status": "completed"}),
                "events": json.dumps(kept),
                "true": True,
                "now": datetime(2026, 1, 1, tzinfo=timezone.utc),
            },
        )
    old.dispose()
    db = Database(database_url)
    try:
        db.upgrade()
        assert db.responses.events("key-0", "resp_old") == ("completed", kept)
        with db.engine.begin() as connection:
            config = migrate._config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0009")
        with db.engine.connect() as connection:
            listed = connection.execute(sa.text("SELECT events FROM responses WHERE id = 'resp_old'")).scalar()
        assert (json.loads(listed) if isinstance(listed, str) else listed) == kept
    finally:
        db.dispose()


# --- static keys' positional owners (revision 0009) ----------------------------------------

# What the owners of version 0008's static keys are now: LLM_BACKEND_API_KEYS=sk-a,bob=sk-b
# and LLM_BACKEND_ADMIN_KEYS=ops=sk-admin.
CARRIED_OVER = {"key-0": "key-5d3c0b0e8a1f2a4b", "key-1": "bob", "admin-0": "ops"}


def _fill_positional_owners(db: Database) -> None:
    """Rows of every kind as version 0008 owned them: by the key's position (``key-7``: a
    position no key holds any more)."""
    from llm_backend.storage import models

    with db.sessions.begin() as session:
        completion = models.StoredChatCompletion(
            id="chatcmpl-0", owner="key-0", model="m", created=1, request={}, response={}, metadata_={}
        )
        session.add(completion)
        session.add(models.StoredResponse(
            id="resp_0", owner="key-1", model="m", status="completed", created_at=1, response={}, request={}, input_items=[]
        ))
        session.add(models.StoredConversation(id="conv_0", owner="admin-0", created_at=1, metadata_={}))
        session.add(models.StoredFile(
            id="file-0", owner="key-1", filename="f", purpose="assistants", bytes=1, sha256="0", path="f", created_at=1
        ))
        # As SQL: the model has columns of later revisions (0011's description).
        session.execute(sa.text(
            "INSERT INTO vector_stores (id, owner, created_at, last_active_at, metadata, generation)"
            " VALUES ('vs_0', 'key-0', 1, 1, '{}', 0)"
        ))
        session.add(models.StoredFile(
            id="file-7", owner="key-7", filename="f", purpose="assistants", bytes=1, sha256="0", path="g", created_at=1
        ))
        for owner in ("key-0", "key-0", "key-1"):  # as SQL: the model has 0013's project_id
            session.execute(sa.text(
                "INSERT INTO usage (minute, operation, owner, model, requests, input_tokens, cached_tokens, output_tokens)"
                " VALUES (60, 'completions', :owner, 'm', 1, 1, 0, 1)"
            ), {"owner": owner})
        for owner in ("key-0", "key-1"):
            session.add(models.RateLimitCounter(owner=owner, kind="tokens_day", window=0, count=5))


def _owners(db: Database) -> dict[str, list[str]]:
    with db.engine.connect() as connection:
        return {
            table: sorted(connection.execute(sa.text(f"SELECT owner FROM {table}")).scalars())
            for table in ("chat_completions", "responses", "conversations", "files", "vector_stores", "usage", "rate_limit_counters")
        }


@pytest.fixture
def carried_over(database_url):
    """A database of version 0008 with positional owners, upgraded with ``CARRIED_OVER``."""
    at_revision(database_url, "0008", _fill_positional_owners)
    db = Database(database_url)
    db.upgrade(owners=CARRIED_OVER)
    yield db
    db.dispose()


def test_positional_owners_are_carried_over_in_every_table(carried_over):
    alice = CARRIED_OVER["key-0"]
    assert _owners(carried_over) == {
        "chat_completions": [alice],
        "responses": ["bob"],
        "conversations": ["ops"],
        "files": ["bob", "key-7"],  # no key is at position 7: nobody's, as before
        "vector_stores": [alice],
        "usage": sorted([alice, alice, "bob"]),
        "rate_limit_counters": [],  # windows restart
    }
    assert carried_over.chat_completions.get(alice, "chatcmpl-0") is not None
    with carried_over.engine.connect() as connection:
        renames = connection.execute(sa.text("SELECT old_owner, new_owner, rows FROM owner_renames")).all()
    assert sorted(renames) == [("admin-0", "ops", 1), ("key-0", alice, 4), ("key-1", "bob", 3)]


def test_a_later_start_with_the_keys_reordered_renames_nothing(carried_over):
    before = _owners(carried_over)
    carried_over.upgrade(owners={"key-0": "bob", "key-1": CARRIED_OVER["key-0"], "admin-0": "ops"})
    assert _owners(carried_over) == before


def test_replicas_starting_together_carry_owners_over_once(new_database_url):
    """Four replicas upgrading one PostgreSQL database from 0008 at the same moment: the
    owners are carried over once, in one transaction; none fails."""
    url = new_database_url("postgresql")
    at_revision(url, "0008", _fill_positional_owners)
    _replicas_upgrading_together(url, owners=CARRIED_OVER)
    db = Database(url)
    try:
        assert _owners(db)["usage"] == sorted([CARRIED_OVER["key-0"]] * 2 + ["bob"])
        with db.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT sum(rows) FROM owner_renames")).scalar() == 8
    finally:
        db.dispose()
