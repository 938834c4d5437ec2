"""The Message Batch store on SQLite and PostgreSQL: a Message Batch is a batch of the batch
tables whose endpoint is ``/v1/messages`` (no migration); its counts come from what its
lines' outputs say (a JSON path both databases read), its pages go both ways, and the two
kinds of batch never show in each other's operations."""

from __future__ import annotations

import pytest

from llm_backend.serving.batches.output import answered, not_run
from llm_backend.storage.batches import CannotCancel
from llm_backend.families.messages.store import MessageBatchStore, StillProcessing

OWNER, OTHER = "owner-a", "owner-b"
DAY = 86400


def made(database, count: int = 4, owner: str = OWNER, refused: int = 0):
    requests = [(f"r{i}", {"model": "m", "max_tokens": 1, "messages": []},
                 answered(f"r{i}", 400, {"error": {"message": "no"}}, "req_x") if i < refused else None)
                for i in range(count)]
    return database.store(MessageBatchStore).create(owner, "key", requests, DAY)


def test_a_batch_is_made_with_its_lines_and_refused_ones_already_errored(database):
    batch = made(database, 3, refused=1)
    assert batch["id"].startswith("msgbatch_") and batch["processing_status"] == "in_progress"
    # All processing until the batch ends, as Anthropic counts them.
    assert batch["request_counts"] == {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert batch["created_at"].endswith("Z") and batch["ended_at"] is None


def test_counts_follow_the_lines_outputs(database):
    batch = made(database, 5)
    claimed = database.batches.claim("holder", 30)
    assert claimed is not None and claimed.id == batch["id"] and claimed.endpoint == "/v1/messages"
    store = database.batches
    store.answer(claimed.seq, 0, answered("r0", 200, {"type": "message"}, "req_a"), False, {"output_tokens": 2})
    store.answer(claimed.seq, 1, answered("r1", 404, {"error": {"message": "no model"}}, "req_b"), True, {})
    store.answer(claimed.seq, 2, not_run("r2", "cancelled"), True, {})
    store.answer(claimed.seq, 3, not_run("r3", "expired"), True, {})
    assert database.store(MessageBatchStore).get(OWNER, batch["id"])["request_counts"]["processing"] == 5
    store.answer(claimed.seq, 4, answered("r4", 200, {"type": "message"}, "req_c"), False, {})
    store.set_status(claimed.seq, "completed", ("in_progress",))
    counts = database.store(MessageBatchStore).get(OWNER, batch["id"])["request_counts"]
    assert counts == {"processing": 0, "succeeded": 2, "errored": 1, "canceled": 1, "expired": 1}


def test_pages_go_back_and_forth_newest_first(database):
    ids = [made(database, 1)["id"] for _ in range(5)]
    newest = list(reversed(ids))
    store = database.store(MessageBatchStore)
    first, more = store.list(OWNER, None, None, 2)
    assert [b["id"] for b in first] == newest[:2] and more
    second, more = store.list(OWNER, None, newest[1], 2)
    assert [b["id"] for b in second] == newest[2:4] and more
    last, more = store.list(OWNER, None, newest[3], 2)
    assert [b["id"] for b in last] == newest[4:] and not more
    back, more = store.list(OWNER, newest[2], None, 2)
    assert [b["id"] for b in back] == newest[:2] and not more
    with pytest.raises(LookupError):
        store.list(OTHER, None, newest[0], 2)


def test_the_two_kinds_and_the_owners_stay_apart(database):
    message_batch = made(database, 1)
    openai_batch = database.batches.create(OWNER, "/v1/chat/completions", "file-x", "24h", DAY, None, None, "key")
    assert database.batches.get(OWNER, message_batch["id"]) is None
    assert [b["id"] for b in database.batches.list(OWNER, None, 10)[0]] == [openai_batch["id"]]
    assert database.store(MessageBatchStore).get(OWNER, openai_batch["id"]) is None
    assert [b["id"] for b in database.store(MessageBatchStore).list(OWNER, None, None, 10)[0]] == [message_batch["id"]]
    assert database.store(MessageBatchStore).get(OTHER, message_batch["id"]) is None
    assert database.store(MessageBatchStore).list(OTHER, None, None, 10) == ([], False)


def test_cancel_delete_and_results_wait_for_the_end(database):
    batch = made(database, 2)
    store = database.store(MessageBatchStore)
    with pytest.raises(StillProcessing):
        store.delete(OWNER, batch["id"])
    with pytest.raises(StillProcessing):
        store.ended(OWNER, batch["id"])
    assert store.cancel(OWNER, batch["id"])["processing_status"] == "canceling"
    seq = database.batches.claim("holder", 30).seq
    database.batches.set_status(seq, "cancelled", ("cancelling",))
    shown = store.get(OWNER, batch["id"])
    assert shown["processing_status"] == "ended" and shown["ended_at"] and shown["cancel_initiated_at"]
    with pytest.raises(CannotCancel):
        store.cancel(OWNER, batch["id"])
    assert store.ended(OWNER, batch["id"]) == seq
    assert [custom_id for _, custom_id, _ in store.outputs(seq, -1, 10)] == ["r0", "r1"]
    assert store.delete(OTHER, batch["id"]) is False
    assert store.delete(OWNER, batch["id"]) is True
    assert store.get(OWNER, batch["id"]) is None and database.batches.row(batch["id"]) is None
