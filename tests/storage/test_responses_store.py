"""The Responses and Conversations stores, on SQLite and PostgreSQL: owner isolation,
chains rebuilt from links, ordered conversation items, the start-up sweep."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from llm_backend.storage.chat_completions import CursorNotFound
from llm_backend.storage.models import Base
from llm_backend.storage.responses import NewResponse, ResponseNotFound


def message(item_id: str, role: str, text: str) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"id": item_id, "type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def turn(number: int, previous: str | None = None, owner: str = "a", status: str = "completed", **kwargs) -> NewResponse:
    response_id = f"resp_{number}"
    answer = message(f"msg_out{number}", "assistant", f"answer {number}")
    return NewResponse(
        id=response_id,
        owner=owner,
        model="smollm2",
        created_at=1700000000 + number,
        response={"id": response_id, "object": "response", "status": status, "output": [answer]},
        request={"model": "smollm2", "input": f"question {number}"},
        input_items=[message(f"msg_in{number}", "user", f"question {number}")],
        previous_response_id=previous,
        **kwargs,
    )


def test_the_models_match_the_migrations(database):
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # The full-text index of chunks is the migration's alone (an FTS5 table on SQLite, a
    # generated tsvector column and its GIN index on PostgreSQL): no ORM class describes it.
    owned_by_migration = ("vector_store_chunks_fts", "ix_vector_store_chunks_text_search", "text_search")
    assert [d for d in differences if not getattr(d[-1], "name", "").startswith(owned_by_migration)] == []


def test_a_saved_response_is_found_by_its_owner_only(database):
    database.responses.save(turn(1))
    assert database.responses.get("a", "resp_1")["output"][0]["id"] == "msg_out1"
    assert database.responses.get("b", "resp_1") is None
    assert database.responses.input_items("b", "resp_1") is None


def test_history_walks_the_chain_oldest_first(database):
    database.responses.save(turn(1))
    database.responses.save(turn(2, previous="resp_1"))
    database.responses.save(turn(3, previous="resp_2"))
    history = database.responses.history("a", "resp_3")
    assert [item["id"] for item in history] == ["msg_in1", "msg_out1", "msg_in2", "msg_out2", "msg_in3", "msg_out3"]


def test_history_through_a_deleted_link_names_that_link(database):
    database.responses.save(turn(1))
    database.responses.save(turn(2, previous="resp_1"))
    assert database.responses.delete("a", "resp_1")
    with pytest.raises(ResponseNotFound) as caught:
        database.responses.history("a", "resp_2")
    assert caught.value.response_id == "resp_1"


def test_another_owner_can_neither_continue_nor_delete_a_response(database):
    database.responses.save(turn(1))
    with pytest.raises(ResponseNotFound):
        database.responses.history("b", "resp_1")
    assert not database.responses.delete("b", "resp_1")
    assert database.responses.get("a", "resp_1") is not None


def test_finish_replaces_the_object_and_status(database):
    database.responses.save(turn(1, status="in_progress", background=True))
    done = {"id": "resp_1", "object": "response", "status": "completed", "output": []}
    assert database.responses.finish("a", "resp_1", done)
    assert database.responses.get("a", "resp_1") == done
    assert database.responses.status("resp_1") == "completed"
    assert not database.responses.finish("a", "resp_missing", done)


def test_an_ended_response_is_never_written_again(database):
    """A cancel (from any replica) lands first: the run finishing later changes nothing,
    neither the object nor its events; nor does the sweep."""
    database.responses.save(turn(1, status="in_progress", background=True))
    cancelled = {"id": "resp_1", "object": "response", "status": "cancelled", "output": []}
    assert database.responses.finish("a", "resp_1", cancelled)
    completed = {**cancelled, "status": "completed"}
    last = {"type": "response.completed", "sequence_number": 0, "response": completed}
    assert not database.responses.finish("a", "resp_1", completed, events=[last])
    assert database.responses.fail_unfinished("stopped", ids=["resp_1"]) == 0
    assert database.responses.get("a", "resp_1")["status"] == "cancelled"
    assert database.responses.events("a", "resp_1") == ("cancelled", [])


def test_the_events_of_a_response_are_written_as_it_runs_and_read_by_its_owner_only(database):
    store = database.responses
    store.save(turn(1, status="in_progress", background=True))
    assert store.events("a", "resp_1") == ("in_progress", [])
    first = [{"type": "response.created", "sequence_number": 0}, {"type": "response.in_progress", "sequence_number": 1}]
    store.add_events("resp_1", first)
    assert store.events("a", "resp_1", after=0) == ("in_progress", first[1:])
    done = {"id": "resp_1", "object": "response", "status": "completed", "output": []}
    last = {"type": "response.completed", "sequence_number": 2, "response": done}
    assert store.finish("a", "resp_1", done, events=[last])
    assert store.events("a", "resp_1") == ("completed", [*first, last])
    assert store.events("b", "resp_1") is None
    # The object itself is read without them; deleting it deletes them.
    assert store.get("a", "resp_1") == done
    assert store.delete("a", "resp_1")
    store.save(turn(1, status="in_progress", background=True))
    assert store.events("a", "resp_1") == ("in_progress", [])


def test_events_written_again_are_kept_once_and_the_end_is_still_written(database):
    # A background response's writer cancelled while its write committed writes those
    # events again as it ends (a full run: the UNIQUE constraint refused that last write).
    store = database.responses
    store.save(turn(1, status="in_progress", background=True))
    first = [{"type": "response.created", "sequence_number": 0}, {"type": "response.in_progress", "sequence_number": 1}]
    store.add_events("resp_1", first)
    store.add_events("resp_1", first)
    cancelled = {"id": "resp_1", "object": "response", "status": "cancelled", "output": []}
    last = {"type": "response.cancelled", "sequence_number": 2, "response": cancelled}
    assert store.finish("a", "resp_1", cancelled, events=[*first[1:], last])
    assert store.events("a", "resp_1") == ("cancelled", [*first, last])


def test_the_sweep_fails_unfinished_responses_only_and_ends_their_streams(database):
    database.responses.save(turn(1, status="in_progress", background=True))
    database.responses.save(turn(2, status="queued", background=True))
    database.responses.save(turn(3))
    database.responses.add_events("resp_1", [{"type": "response.created", "sequence_number": 0}])
    assert database.responses.fail_unfinished("stopped") == 2
    failed = database.responses.get("a", "resp_1")
    assert failed["status"] == "failed" and failed["error"]["message"] == "stopped"
    assert database.responses.status("resp_3") == "completed"
    status, events = database.responses.events("a", "resp_1")
    assert status == "failed" and [(e["type"], e["sequence_number"]) for e in events] == [
        ("response.created", 0),
        ("response.failed", 1),
    ]
    assert events[-1]["response"] == failed
    assert database.responses.events("a", "resp_2")[1][0]["sequence_number"] == 0


def test_ended_names_the_responses_no_longer_running(database):
    database.responses.save(turn(1, status="in_progress", background=True))
    database.responses.save(turn(2, status="in_progress", background=True))
    database.responses.finish("a", "resp_2", {"id": "resp_2", "status": "cancelled", "output": []})
    assert database.responses.ended(["resp_1", "resp_2", "resp_gone"]) == ["resp_2", "resp_gone"]


def test_a_conversation_keeps_its_items_in_order(database):
    store = database.conversations
    created = store.create("a", "conv_1", 1700000000, {"k": "v"}, [message("msg_1", "user", "hi")])
    assert created == {"id": "conv_1", "object": "conversation", "created_at": 1700000000, "metadata": {"k": "v"}}
    store.add_items("a", "conv_1", [message("msg_2", "assistant", "hello"), message("msg_3", "user", "bye")])
    assert [item["id"] for item in store.items("a", "conv_1")] == ["msg_1", "msg_2", "msg_3"]
    page = store.list_items("a", "conv_1", order="desc", limit=2)
    assert [item["id"] for item in page.data] == ["msg_3", "msg_2"] and page.has_more
    page = store.list_items("a", "conv_1", order="asc", after="msg_1")
    assert [item["id"] for item in page.data] == ["msg_2", "msg_3"] and not page.has_more


def test_an_item_id_already_in_the_conversation_gets_a_new_one(database):
    store = database.conversations
    store.create("a", "conv_1", 1700000000, {}, [message("msg_1", "user", "hi")])
    stored = store.add_items("a", "conv_1", [message("msg_1", "user", "again")])
    assert stored[0]["id"] != "msg_1" and stored[0]["id"].startswith("msg_")
    assert len(store.items("a", "conv_1")) == 2


def test_conversations_are_invisible_to_other_owners(database):
    store = database.conversations
    store.create("a", "conv_1", 1700000000, {}, [message("msg_1", "user", "hi")])
    assert store.get("b", "conv_1") is None
    assert store.items("b", "conv_1") is None
    assert store.add_items("b", "conv_1", [message("msg_2", "user", "x")]) is None
    assert store.get_item("b", "conv_1", "msg_1") is None
    assert store.delete_item("b", "conv_1", "msg_1") is None
    assert store.update_metadata("b", "conv_1", {"x": "y"}) is None
    assert not store.delete("b", "conv_1")
    assert len(store.items("a", "conv_1")) == 1


def test_deleting_a_conversation_deletes_its_items(database):
    store = database.conversations
    store.create("a", "conv_1", 1700000000, {}, [message("msg_1", "user", "hi")])
    assert store.delete("a", "conv_1")
    assert store.get("a", "conv_1") is None
    assert store.count_items() == 0


def test_deleting_an_item_returns_the_conversation(database):
    store = database.conversations
    store.create("a", "conv_1", 1700000000, {}, [message("msg_1", "user", "hi"), message("msg_2", "user", "x")])
    assert store.delete_item("a", "conv_1", "msg_1")["id"] == "conv_1"
    assert store.get_item("a", "conv_1", "msg_1") is None
    assert store.delete_item("a", "conv_1", "msg_1") is None


def test_an_unknown_item_cursor_is_reported(database):
    database.conversations.create("a", "conv_1", 1700000000, {}, [])
    with pytest.raises(CursorNotFound):
        database.conversations.list_items("a", "conv_1", after="msg_none")


def test_a_response_in_a_conversation_appends_its_items_with_it(database):
    database.conversations.create("a", "conv_1", 1700000000, {}, [])
    record = turn(1, conversation_id="conv_1")
    database.responses.save(record, [*record.input_items, *record.response["output"]])
    assert [item["id"] for item in database.conversations.items("a", "conv_1")] == ["msg_in1", "msg_out1"]
