"""The schema is owned by the migrations: an existing database upgrades without loss."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import sqlalchemy as sa

from llm_backend.storage import Database
from llm_backend.storage.api_keys import key_digest

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


def test_database_from_revision_0001_upgrades_without_loss(database_url):
    old = Database(database_url)
    old.upgrade("0001")
    _fill_revision_0001(old)
    old.dispose()

    db = Database(database_url)
    db.upgrade()
    try:
        assert db.revision() == "0011"
        stored = asyncio.run(db.chat_completions.get("key-0", OLD_COMPLETION["id"]))
        assert stored == {**OLD_COMPLETION, "metadata": {"project": "old"}}
        assert db.chat_completions.status_sync(OLD_COMPLETION["id"]) == ("completed", True)
        # The metadata filter of 0002 finds the old row: its pairs were backfilled.
        page = asyncio.run(db.chat_completions.list("key-0", metadata={"project": "old"}))
        assert [item["id"] for item in page.data] == [OLD_COMPLETION["id"]]
        assert asyncio.run(db.api_keys.authenticate("sk-llmb-old")) == "apikey_old"
    finally:
        db.dispose()


def test_upgrade_of_an_up_to_date_database_changes_nothing(database):
    asyncio.run(database.chat_completions.list("anyone"))
    database.upgrade()
    assert database.revision() == "0011"


def test_replicas_starting_together_migrate_once(new_database_url):
    """Four replicas upgrading one new PostgreSQL database at the same moment: one runs the
    migrations, the others wait and find the schema at head (none fails on a half-built one)."""
    import threading

    from llm_backend.storage import migrate

    url = new_database_url("postgresql")
    engines = [sa.create_engine(url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def replica(engine) -> None:
        start.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=replica, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    heads = {migrate.current_revision(engine) for engine in engines}
    for engine in engines:
        engine.dispose()
    assert not failures, failures
    assert len(heads) == 1 and None not in heads
