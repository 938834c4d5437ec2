"""What a forwarded answer shows its caller, and what a request names (serving/ownership.py):
read from objects as the OpenAI document's examples give them."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from llm_backend.serving.claims import claims
from llm_backend.serving.ownership import references

BATCH = {
    "id": "batch_abc123", "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
    "input_file_id": "file-abc123", "completion_window": "24h", "status": "completed",
    "output_file_id": "file-cvaTdG", "error_file_id": "file-HOWS94", "created_at": 1711471533,
    "request_counts": {"total": 100, "completed": 95, "failed": 5}, "metadata": {"customer_id": "user_123456789"},
}
FINE_TUNING_JOB = {
    "object": "fine_tuning.job", "id": "ftjob-abc123", "model": "gpt-4o-mini-2024-07-18", "created_at": 1721764800,
    "fine_tuned_model": "ft:gpt-4o-mini:org::abc", "organization_id": "org-123", "result_files": ["file-res1"],
    "status": "succeeded", "validation_file": None, "training_file": "file-abc123",
}
RUN = {"id": "run_abc123", "object": "thread.run", "thread_id": "thread_abc123", "assistant_id": "asst_abc123", "status": "queued"}


def test_a_batch_shows_itself_and_its_files():
    assert claims(BATCH, {}) == {
        "batch_abc123": "batch", "file-abc123": "file", "file-cvaTdG": "file", "file-HOWS94": "file",
    }


def test_a_fine_tuning_job_shows_its_model_and_result_files():
    found = claims(FINE_TUNING_JOB, {})
    assert found["ftjob-abc123"] == "fine_tuning.job"
    assert found["ft:gpt-4o-mini:org::abc"] == "model"
    assert found["file-res1"] == found["file-abc123"] == "file"
    assert "gpt-4o-mini-2024-07-18" not in found  # a base model is nobody's


def test_a_run_made_with_its_thread_shows_the_thread():
    assert claims(RUN, {})["thread_abc123"] == "thread"


def test_objects_inside_an_answer_are_shown_but_items_and_list_envelopes_are_not():
    upload = {"id": "upload_1", "object": "upload", "status": "completed", "file": {"id": "file-9", "object": "file"}}
    assert claims(upload, {}) == {"upload_1": "upload", "file-9": "file"}
    response = {"id": "resp_1", "object": "response", "output": [{"type": "function_call", "id": "fc_1", "call_id": "call_1"}]}
    assert claims(response, {}) == {"resp_1": "response"}
    page = {"object": "list", "data": [{"id": "vs_1", "object": "vector_store"}], "first_id": "vs_1", "last_id": "vs_9"}
    assert claims(page, {}) == {"vs_1": "vector_store"}


def test_a_stream_event_shows_the_object_it_carries():
    event = {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_2", "object": "response"}}
    assert claims(event, {}) == {"resp_2": "response"}


def test_a_request_names_ids_wherever_they_are_but_not_prose():
    body = {
        "model": "gpt-4o",
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_abc"]}],
        "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-xyz"}, {"type": "input_text", "text": "see file-xyz please"}]}],
        "previous_response_id": "resp_1",
    }
    found = references(body, "", {})
    assert {"vs_abc": "vector_store_ids", "file-xyz": "file_id", "resp_1": "previous_response_id"}.items() <= found.items()
    assert "user" not in found and not any(" " in value for value in found)


FORM = (
    b"--b\r\nContent-Disposition: form-data; name=\"file_id\"\r\n\r\nfile-abc\r\n"
    b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n\r\nfile-inside\r\n"
    b"--b\r\nContent-Disposition: form-data; name=\"video\"\r\n\r\n{\"id\": \"video_1\"}\r\n--b--\r\n"
)


def strings(content, content_type: bytes | None, **headers: bytes):
    from llm_backend.serving.request_ids import body_strings

    all_headers = [(b"content-type", content_type)] if content_type is not None else []
    all_headers += [(name.replace("_", "-").encode(), value) for name, value in headers.items()]

    async def read():
        return [pair async for pair in body_strings(content, all_headers)]

    return asyncio.run(read())


def test_a_forms_text_fields_are_read_and_its_files_skipped():
    assert strings(FORM, b"multipart/form-data; boundary=b") == [("file_id", "file-abc"), ("id", "video_1")]


def test_a_streamed_body_is_read_to_its_end():
    """A body spooled to disk (past the 1 MB kept in memory) is read like a small one."""
    from llm_backend.backends.base import StreamedBody

    content = b'{"file_ids": ["file-a"], "pad": "' + b" " * (3 << 20) + b'", "last": "file-z"}' + b" " * (2 << 20)

    async def chunks():
        for start in range(0, len(content), 1 << 20):
            yield content[start : start + (1 << 20)]

    found = strings(StreamedBody(len(content), chunks), b"application/json")
    assert ("file_ids", "file-a") in found and ("last", "file-z") in found


@pytest.mark.parametrize("content_type", [b"application/json", b"text/plain", None, b"application/octet-stream"])
def test_any_other_body_is_read_as_json_escapes_decoded(content_type):
    found = strings(rb'{"vector_store_ids": ["vs_1"], "file_id": "file\u002dabc"}', content_type)
    assert found == [("vector_store_ids", "vs_1"), ("file_id", "file-abc")]


@pytest.mark.parametrize(
    "content, content_type, headers",
    [
        (b'{"file_id": "file-abc"', b"application/json", {}),  # cut short
        (b'{"a": 1} {"file_id": "file-abc"}', b"text/plain", {}),  # two values
        (b"file-abc", b"text/plain", {}),  # not JSON at all
        (b"\xff\xfe{}", b"application/json", {}),  # not UTF-8
        (b'{"file_id": "file-abc"}', b"application/json; charset=utf-16", {}),
        (b'{"file_id": "file-abc"}', b"application/json", {"content_encoding": b"gzip"}),
        (b"not a form", b"multipart/form-data; boundary=b", {}),
        (b"--b\r\nContent-Disposition: form-data; name=\"file_id\"\r\nContent-Transfer-Encoding: base64\r\n\r\nZmlsZS1hYmM=\r\n--b--\r\n", b"multipart/form-data; boundary=b", {}),
        (b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n" + b"a" * ((1 << 20) + 1) + b"\r\n--b--\r\n", b"multipart/form-data; boundary=b", {}),
        (b"a=%ff", b"application/x-www-form-urlencoded", {}),
    ],
    ids=["cut", "two-values", "text", "not-utf8", "utf16", "gzip", "bad-form", "base64-part", "long-field", "bad-urlencoded"],
)
def test_a_body_that_cannot_be_read_is_refused(content, content_type, headers):
    from llm_backend.serving.form_fields import Unreadable

    with pytest.raises(Unreadable):
        strings(content, content_type, **headers)


def test_a_reads_answer_shows_only_what_its_objects_name():
    """A store's file list shows files that exist already: reading it takes none of them."""
    files = {"object": "list", "data": [{"id": "file-x", "object": "vector_store.file", "vector_store_id": "vs_1"}]}
    assert claims(files, {}, objects=False) == {"vs_1": "vector_store"}
    assert claims(BATCH, {}, objects=False) == {"file-abc123": "file", "file-cvaTdG": "file", "file-HOWS94": "file"}


def test_a_jobs_checkpoints_are_its_owners_to_share():
    checkpoints = {"object": "list", "data": [{
        "object": "fine_tuning.job.checkpoint", "id": "ftckpt_1", "fine_tuning_job_id": "ftjob-abc123",
        "fine_tuned_model_checkpoint": "ft:gpt-4o-mini:org::abc:ckpt-step-10", "step_number": 10,
    }]}
    assert claims(checkpoints, {}, objects=False)["ft:gpt-4o-mini:org::abc:ckpt-step-10"] == "model"


# --- a forwarded stream, read by the guard event by event (Guard.answer) ---

STREAM = (
    b'event: response.created\ndata: {"type": "response.created", "response": {"id": "resp_cut", "object": "response"}}\n\n\n'
    b": keep-alive\n\n"
    b'data: {"type": "response.output_item.added", "item": {"id": "msg_cut", "object": "message"}}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.fixture
def objects(tmp_path):
    from llm_backend.storage import Database

    database = Database(f"sqlite:///{tmp_path / 'owners.db'}")
    database.upgrade()
    yield database.forwarded_objects
    database.dispose()


def guarded(objects, owner: str, pieces: list[bytes]) -> bytes:
    """What a client of ``owner`` is sent of a stream the upstream sent in ``pieces``."""
    from llm_backend.backends.base import Relayed
    from llm_backend.serving.ownership import Guard

    async def chunks():
        for piece in pieces:
            yield piece

    async def no_page(query: bytes):
        raise AssertionError("a stream has no pages")

    async def read() -> bytes:
        answer = Relayed(200, [(b"content-type", b"text/event-stream")], chunks=chunks())
        passed = await Guard(objects, owner, "POST", {}, b"", 1 << 20).answer(answer, no_page)
        return b"".join([chunk async for chunk in passed.chunks])

    return asyncio.run(read())


def cut(content: bytes, rng: random.Random) -> list[bytes]:
    ends = sorted(rng.sample(range(1, len(content)), rng.randint(0, 12)))
    return [content[start:end] for start, end in zip([0, *ends], [*ends, len(content)])]


def test_a_stream_cut_anywhere_is_passed_on_byte_for_byte_and_its_objects_are_its_callers(objects):
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")  # replay: random.Random(seed)
    rng = random.Random(seed)
    for _ in range(50):
        pieces = cut(STREAM, rng)
        assert guarded(objects, "alice", pieces) == STREAM, pieces
    owners = asyncio.run(objects.owners(["resp_cut", "msg_cut"]))
    assert owners == {"resp_cut": ("alice", "response"), "msg_cut": ("alice", "message")}


def test_a_stream_ends_whole_at_an_event_that_cannot_be_read(objects):
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    garbled = STREAM[:-len(b"data: [DONE]\n\n")] + b'data: {"type": "cut\n\ndata: {"id": "file-after", "object": "file"}\n\n'
    for _ in range(50):
        passed = guarded(objects, "bob", cut(garbled, rng))
        events = passed.split(b"\n\n")
        assert passed.startswith(STREAM[: STREAM.index(b"data: [DONE]")])  # every event before it, whole
        assert json.loads(events[-2].removeprefix(b"data: "))["error"]["code"] == "upstream_unreadable"
        assert b"file-after" not in passed and events[-1] == b""
    assert asyncio.run(objects.owners(["file-after"])) == {}


# --- what the guard reads of an answer, and what it leaves unread ---


def test_the_document_shows_which_answers_can_hold_an_object_to_record():
    from llm_backend.serving.claims import objectless_operations
    from tests.support.document import openai_document

    objectless = objectless_operations(openai_document())
    assert {"createImage", "createModeration", "createEmbedding", "createSpeech"} <= objectless
    # Objects, or ids an object names: read, and recorded for their caller.
    kept = {"createFile", "listFiles", "createBatch", "createResponse", "createVectorStore", "createFineTuningJob",
            "createChatCompletion", "createThreadAndRun", "listVectorStoreFiles", "createUpload"}
    assert not kept & objectless
    assert not {"deleteFile", "deleteResponse"} & objectless  # a DELETE's answer forgets its object


def guard_answer(objects, answer, read_limit: int, objectless: bool = False):
    from llm_backend.serving.ownership import Guard

    async def no_page(query: bytes):
        raise AssertionError("one page")

    return asyncio.run(Guard(objects, "carol", "POST", {}, b"", read_limit, objectless).answer(answer, no_page))


def pieces_of(content: bytes, size: int):
    async def chunks():
        for start in range(0, len(content), size):
            yield content[start : start + size]

    return chunks()


def test_an_answer_read_whole_is_refused_past_the_read_limit_and_its_upstream_request_closed(objects):
    from llm_backend.backends.base import Relayed
    from llm_backend.errors import OpenAIError

    closed = []

    async def close():
        closed.append(True)

    body = json.dumps({"id": "file-big", "object": "file", "filename": "x" * 5000}).encode()
    answer = Relayed(200, [(b"content-type", b"application/json")], chunks=pieces_of(body, 1000), close=close)
    with pytest.raises(OpenAIError) as refused:
        guard_answer(objects, answer, 4096)
    assert refused.value.body()["error"]["code"] == "upstream_unreadable" and closed == [True]
    assert asyncio.run(objects.owners(["file-big"])) == {}
    answer = Relayed(200, [(b"content-type", b"application/json")], chunks=pieces_of(body, 1000))
    assert guard_answer(objects, answer, 8192).content == body
    assert asyncio.run(objects.owners(["file-big"])) == {"file-big": ("carol", "file")}


def test_an_answer_of_more_values_than_are_read_whole_is_read_as_it_is_parsed(objects):
    # A Response with log probabilities holds millions: refused (502) once, it is now read
    # as its parser's events come, keeping only what the claims rule reads.
    from llm_backend.backends.base import Relayed
    from llm_backend.json.text import MAX_VALUES

    body = b'{"id": "file-many", "object": "file", "n": [' + b"0," * MAX_VALUES + b'0], "batch_id": "batch_many"}'
    answer = Relayed(200, [(b"content-type", b"application/json")], chunks=pieces_of(body, 1 << 16))
    assert guard_answer(objects, answer, 64 << 20).content == body
    assert asyncio.run(objects.owners(["file-many", "batch_many"])) == {"file-many": ("carol", "file"), "batch_many": ("carol", "batch")}


def test_a_streamed_response_of_more_values_than_are_read_whole_is_passed_on_and_recorded(objects):
    # The event a Response stream ends with carries the whole Response: with top-20 log
    # probabilities over 6,000 tokens, 1.5 million values (its stream ended unreadable before).
    from llm_backend.json.scan import scan
    from llm_backend.json.text import MAX_VALUES

    logprob = {"token": "a", "logprob": -0.5, "bytes": [97]}
    response = {"id": "resp_long", "object": "response", "output": [{"logprobs": [{**logprob, "top_logprobs": [logprob] * 20}] * 6000}]}
    event = b"event: response.completed\ndata: " + json.dumps({"type": "response.completed", "response": response}).encode() + b"\n\n"
    assert scan(event[event.index(b"{"):]).values > MAX_VALUES
    assert guarded(objects, "dave", [event[:1000], event[1000:]]) == event
    assert asyncio.run(objects.owners(["resp_long"])) == {"resp_long": ("dave", "response")}


def test_an_answer_of_more_values_than_are_read_as_parsed_is_refused(objects):
    from llm_backend.backends.base import Relayed
    from llm_backend.errors import OpenAIError
    from llm_backend.serving.claims import MAX_STREAMED_VALUES

    body = b'{"id": "file-most", "object": "file", "n": [' + b"0," * MAX_STREAMED_VALUES + b"0]}"
    answer = Relayed(200, [(b"content-type", b"application/json")], chunks=pieces_of(body, 1 << 20))
    with pytest.raises(OpenAIError):
        guard_answer(objects, answer, 64 << 20)
    assert asyncio.run(objects.owners(["file-most"])) == {}


def test_an_answer_that_can_hold_no_object_is_not_read(objects):
    from llm_backend.backends.base import Relayed

    body = b'{"id": "file-unread", "object": "file"} and more'
    answer = Relayed(200, [(b"content-type", b"application/json")], content=body)
    assert guard_answer(objects, answer, 10, objectless=True) is answer
    assert asyncio.run(objects.owners(["file-unread"])) == {}  # nobody's: refused to everyone
