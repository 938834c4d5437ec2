"""One parse for every reader (issue #56, item 4): an object that holds a key twice is
refused, 400 ``duplicate_key`` naming the key's path, on every lane that reads a client's
JSON - a body (small, large and read in slices, or one only the standard library's own
scanner reads), a WebSocket event of either protocol, a batch input line, a forwarded body
read as it streams - since parsers differ on it (Python's keeps the last value) while the
bytes may go upstream as they came. An upstream's answer is read as it came."""

from __future__ import annotations

import asyncio
import json

import pytest

from llm_backend.errors import OpenAIError
from llm_backend.http.body import parse_json
from llm_backend.http.socket_endpoint import client_event
from llm_backend.http.socket_frames import RefusedEvent, read_event
from llm_backend.json.text import LARGE_BODY, MANY_VALUES, KeyPaths, loads
from llm_backend.serving.batches import input as batch_input
from llm_backend.serving.request_ids import body_strings

JSON = [(b"content-type", b"application/json")]


def refused(body: bytes) -> OpenAIError:
    with pytest.raises(OpenAIError) as raised:
        parse_json(body)
    assert raised.value.status == 400 and raised.value.code == "duplicate_key"
    return raised.value


@pytest.mark.parametrize(
    "body, param",
    [
        (b'{"model": "claude-big", "max_tokens": 64000, "messages": [], "model": "claude-up", "max_tokens": 1}', "model"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "a", "content": "b"}]}', "messages[0].content"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "user", "role": "system"}]}', "messages[1].role"),
        (b'{"tools": [{"function": {"parameters": {"properties": {"a": {}, "b": {}, "a": {}}}}}]}', "tools[0].function.parameters.properties.a"),
        (b'[{"a": 1}, {"b": [0, {"c": 1, "c": 2}]}]', "[1].b[1].c"),
    ],
)
def test_a_key_twice_in_an_object_is_refused_naming_its_path(body, param):
    error = refused(body)
    assert error.param == param and f"'{param}'" in error.message
    assert error.body()["error"] == {"message": error.message, "type": "invalid_request_error", "param": param, "code": "duplicate_key"}


def test_a_key_is_one_key_whatever_its_spelling_and_each_objects_own():
    assert refused(b'{"model": "a", "\\u006dodel": "b"}').param == "model"
    body = b'{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": {"role": 1}}], "role": 2}'
    assert parse_json(body) == json.loads(body)


def test_a_large_body_read_in_slices_with_a_key_twice_is_refused():
    # Above LARGE_BODY with more than MANY_VALUES values: ijson's C backend, a slice at a time.
    body = b'{"input": [' + b",".join([b'{"a": 1, "b": 2}'] * (MANY_VALUES // 2)) + b'], "model": "x", "input": 1}'
    assert len(body) > LARGE_BODY
    assert refused(body).param == "input"
    inner = body.replace(b'"b": 2}], "model"', b'"a": 2}], "model"').replace(b', "input": 1}', b"}")
    assert refused(inner).param == f"input[{MANY_VALUES // 2 - 1}].a"
    once = body.replace(b', "input": 1}', b"}")  # each key once: what json.loads makes of it
    assert parse_json(once) == json.loads(once)


def test_a_large_body_only_the_reference_scanner_reads_is_refused_too():
    # NaN is read by json.loads, not by ijson: the body is read by the standard library's
    # pure-Python scanner; the key is then named without its path's reader (ijson's).
    body = b'{"input": [' + b",".join([b"0"] * max(MANY_VALUES + 10, LARGE_BODY // 2 + 10)) + b'], "t": NaN, "t": 1}'
    assert len(body) > LARGE_BODY
    assert refused(body).param == "t"


def test_an_upstreams_answer_is_read_as_it_came():
    assert loads(b'{"usage": {"output_tokens": 1}, "usage": {"output_tokens": 9}}', unique_keys=False) == {
        "usage": {"output_tokens": 9}
    }


def test_a_long_key_is_shown_cut_short():
    error = refused(b'{"' + b"k" * 5000 + b'": 1, "' + b"k" * 5000 + b'": 2}')
    assert len(error.param) < 300 and len(error.message) < 500


def test_a_realtime_event_with_a_key_twice_is_refused_as_an_event():
    frame = '{"type": "session.update", "event_id": "e1", "session": {"instructions": "a", "instructions": "b"}}'
    with pytest.raises(RefusedEvent) as raised:
        asyncio.run(read_event(frame, lambda event: event, 1000, None))
    assert raised.value.error.code == "duplicate_key" and raised.value.error.param == "session.instructions"


def test_a_responses_socket_event_with_a_key_twice_is_refused():
    with pytest.raises(OpenAIError) as raised:
        client_event('{"type": "response.create", "model": "a", "model": "b"}')
    assert raised.value.code == "duplicate_key" and raised.value.param == "model"


def _strings(chunks: list[bytes], headers=JSON) -> list[tuple[str, str]]:
    from llm_backend.backends.base import StreamedBody

    async def parts():
        for chunk in chunks:
            yield chunk

    async def read():
        body = StreamedBody(sum(map(len, chunks)), parts)
        return [pair async for pair in body_strings(body, headers)]

    return asyncio.run(read())


def test_a_forwarded_body_with_a_key_twice_is_refused_as_it_streams():
    body = b'{"model": "gpt-image-1", "n": 1, "prompt": "a cat", "n": 10}'
    cut = body.index(b'"n": 10') + 2  # the repeated key cut across two chunks
    with pytest.raises(OpenAIError) as raised:
        _strings([body[:cut], body[cut:]])
    assert raised.value.code == "duplicate_key" and raised.value.param == "n"
    assert _strings([body.replace(b', "n": 10', b"")]) == [("model", "gpt-image-1"), ("prompt", "a cat")]


def test_a_forwarded_bodys_nested_key_twice_is_named_with_its_indexes():
    body = b'{"input": [{"type": "message"}, {"type": "input_file", "file_id": "file-a", "file_id": "file-b"}]}'
    with pytest.raises(OpenAIError) as raised:
        _strings([body])
    assert raised.value.param == "input[1].file_id"


def test_key_paths_hold_only_the_keys_of_the_objects_open():
    paths = KeyPaths()
    events = [("start_array", None), ("start_map", None), ("map_key", "a"), ("number", 1), ("map_key", "b"),
              ("number", 2), ("end_map", None), ("start_map", None), ("map_key", "a")]
    for event, value in events:
        paths.event(event, value)
    assert paths.held == 1


def test_a_batch_line_with_a_key_twice_fails_the_batch_naming_it(tmp_path):
    path = tmp_path / "input.jsonl"
    good = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}
    path.write_bytes(json.dumps(good).encode() + b"\n" + json.dumps({**good, "custom_id": "b"}).encode()[:-1]
                     + b', "body": {"model": "m", "messages": []}}\n')
    checked = batch_input.check(path, "/v1/chat/completions", ["model", "messages"], lambda model: True)
    [problem] = checked.errors
    assert problem["code"] == "duplicate_key" and problem["line"] == 2 and "'body'" in problem["message"]
