"""The tenant guard of a gateway cannot be walked around (issue #33, seen live: a JSON body
padded past the 1 MB kept in memory was passed unread, and tenant B read tenant A's secret
through B's own vector store). Through a pure gateway in front of a real upstream (this
service with the real model), B gets A's 404 at any body size and content type, what the
guard cannot read is refused, and no process grows past its budget while it reads."""

from __future__ import annotations

import gzip
import json

import httpx
import openai
import pytest

from tests.support.clients import keyed_server, sdk, until_terminal
from tests.support.fake_upstreams import GarbledUpstream
from tests.support.server import LiveServer, log_records, log_size, logged
from tests.upstream.conftest import SERVICE_KEY

KEY_A, KEY_B = "sk-hostile-a-61b0c2", "sk-hostile-b-93e7d4"
MiB = 1 << 20
READ_LIMIT = MiB  # the garbled gateway's: its upstream sends 128 MiB past it (GarbledUpstream.ENDLESS)
READ_GROWTH = 64 * MiB  # what reading such an answer may grow the gateway by: half of it
UNREADABLE = "The upstream API's answer could not be read, so it was not passed on."


@pytest.fixture(scope="module")
def gateway(server, tmp_path_factory) -> LiveServer:
    env = {"LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": server.api, "OPENAI_API_KEY": SERVICE_KEY}
    with keyed_server(tmp_path_factory.mktemp("guard"), [KEY_A, KEY_B], env=env) as live:
        yield live


@pytest.fixture(scope="module")
def secret(gateway) -> str:
    """A's file, holding a secret."""
    return sdk(gateway, api_key=KEY_A).files.create(file=("a.txt", b"A's secret: 4711"), purpose="assistants").id


@pytest.fixture(scope="module")
def bobs_store(gateway) -> str:
    return sdk(gateway, api_key=KEY_B).vector_stores.create(name="b's").id


def upstream_asked(server: LiveServer, since: int, path: str) -> bool:
    return any(record.get("path") == path for record in log_records(server, since))


def attach(gateway: LiveServer, store: str, content: bytes, content_type: str | None, **headers: str) -> httpx.Response:
    all_headers = {"Authorization": f"Bearer {KEY_B}", **headers}
    if content_type is not None:
        all_headers["content-type"] = content_type
    return httpx.post(f"{gateway.api}/vector_stores/{store}/files", content=content, headers=all_headers, timeout=120)


# Past the 1 MiB a body is kept in memory, and near the 8 MiB JSON body limit.
PADDINGS = [0, 2 * MiB, int(7.5 * MiB)]


@pytest.mark.parametrize("padding", PADDINGS, ids=["small", "spooled", "near-limit"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None, "application/octet-stream"])
def test_b_cannot_name_as_file_at_any_size_or_content_type(gateway, server, secret, bobs_store, measured, padding, content_type):
    body = json.dumps({"file_id": secret}).encode() + b" " * padding
    since = log_size(server)
    with measured(gateway):
        answer = attach(gateway, bobs_store, body, content_type)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["message"] == f"No such File object: {secret}"
    assert not upstream_asked(server, since, f"/v1/vector_stores/{bobs_store}/files")


@pytest.mark.parametrize("levels", [20_000, 200_000, 2_000_000])
def test_a_deep_body_is_refused_before_the_guard_reads_it(gateway, server, bobs_store, measured, levels):
    # Issue #47: the guard's streaming parser names each event's path, quadratic in the
    # depth (5,000 levels: +60 MB, 200,000: gigabytes); scanned first, it is refused unread.
    body = b'{"file_id": "file-x", "attributes": ' + b"[" * levels + b"]" * levels + b"}"
    since = log_size(server)
    with measured(gateway):
        answer = attach(gateway, bobs_store, body, "application/json")
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error"]["code"] == "invalid_body" and "64 levels deep" in answer.json()["error"]["message"]
    assert not upstream_asked(server, since, f"/v1/vector_stores/{bobs_store}/files")


@pytest.mark.parametrize("path", ["/responses", "/images/generations"])
def test_a_deep_body_is_refused_before_its_usage_is_read(gateway, server, measured, path):
    # The fields a forwarded operation is counted by (its model, n, max_output_tokens) are
    # read from its stream as the guard reads it; a model after 200,000 levels is refused
    # unread, in bounded memory (ijson's paths are quadratic in the depth).
    levels = 200_000
    body = b'{"metadata": ' + b"[" * levels + b"]" * levels + b', "model": "gpt-x", "input": "hi", "prompt": "hi"}'
    since = log_size(server)
    with measured(gateway):
        answer = httpx.post(gateway.api + path, content=body, headers={"Authorization": f"Bearer {KEY_B}",
                            "content-type": "application/json"}, timeout=60)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error"]["code"] == "invalid_body" and "64 levels deep" in answer.json()["error"]["message"]
    assert not upstream_asked(server, since, "/v1" + path)


def test_an_id_hidden_in_a_json_escape_is_seen(gateway, secret, bobs_store):
    hidden = json.dumps({"file_id": secret}).replace("-", "\\u002d").encode() + b" " * (2 * MiB)
    assert attach(gateway, bobs_store, hidden, "application/json").status_code == 404


def test_a_form_field_after_a_large_file_part_is_seen(gateway, secret, measured):
    with measured(gateway):
        answer = httpx.post(
            gateway.api + "/videos/edits",
            headers={"Authorization": f"Bearer {KEY_B}"},
            files={"reference": ("frame.png", b"\x89PNG" + bytes(3 * MiB))},
            data={"prompt": "mine now", "video": secret},
            timeout=120,
        )
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["param"] == "video"


@pytest.mark.parametrize(
    "content, content_type, headers",
    [
        (gzip.compress(b'{"file_id": "file-x"}'), "application/json", {"content-encoding": "gzip"}),
        (b'{"file_id": "file-x"}', "application/json; charset=utf-16", {}),
        (b'{"file_id": "file-x"', "application/json", {}),
        (b"file_id=file-x", "text/plain", {}),
    ],
    ids=["gzip", "utf-16", "cut", "not-json"],
)
def test_a_body_the_guard_cannot_read_is_refused(gateway, server, bobs_store, content, content_type, headers):
    since = log_size(server)
    answer = attach(gateway, bobs_store, content, content_type, **headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_body"
    assert not upstream_asked(server, since, f"/v1/vector_stores/{bobs_store}/files")


@pytest.fixture(scope="module")
def garbled_gateway(tmp_path_factory):
    with GarbledUpstream() as upstream:
        env = {
            "LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": upstream.api, "OPENAI_API_KEY": SERVICE_KEY,
            "LLM_BACKEND_UPSTREAM_MAX_READ_BYTES": str(READ_LIMIT),
        }
        with keyed_server(tmp_path_factory.mktemp("garbled"), [KEY_A, KEY_B], env=env) as live:
            yield live


@pytest.mark.parametrize("path", ["/files", "/batches", "/vector_stores"], ids=["cut", "html", "gzip"])
def test_a_list_answer_the_guard_cannot_read_is_refused(garbled_gateway, path):
    answer = httpx.get(garbled_gateway.api + path, headers={"Authorization": f"Bearer {KEY_B}"}, timeout=30)
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["code"] == "upstream_unreadable"
    assert "file-of-another" not in answer.text


@pytest.mark.parametrize(
    "model, read",
    [("gpt-x", ["response.created"]), ("gpt-split", ["response.created", "response.in_progress"])],
    ids=["one-piece", "cut-inside-events"],
)
def test_a_stream_ends_with_an_error_event_at_an_event_the_guard_cannot_read(garbled_gateway, model, read):
    # As a relayed stream failing midway ends (backends/upstream/relay.py): the events read
    # before it, whole, then OpenAI's error event, which the SDK raises; not a cut connection
    # and a traceback in the server's log.
    since = log_size(garbled_gateway)
    client = sdk(garbled_gateway, api_key=KEY_B)
    seen = []
    with pytest.raises(openai.APIError) as failed:
        for event in client.responses.create(model=model, input="hi", stream=True):
            seen.append(event.type)
    assert seen == read
    assert failed.value.message == UNREADABLE
    records = log_records(garbled_gateway, since)
    assert [record["event"] for record in records if record["level"] in ("error", "critical")] == []
    assert any(record["level"] == "warning" and "could not be read" in record["event"] for record in records)


@pytest.mark.parametrize(
    "model, read",
    [("gpt-x", ["response.created"]), ("gpt-split", ["response.created", "response.in_progress"]), ("gpt-deep", [])],
    ids=["one-piece", "cut-inside-events", "answered-whole"],
)
def test_over_the_socket_an_answer_the_guard_cannot_read_ends_with_an_error_event(garbled_gateway, model, read):
    # The Responses WebSocket for an upstream's model (http/responses_upstream.py): the events
    # read before it, then the mode's error event, and the socket goes on. An error the relay
    # writes has no ``type``: passed on as an event, the lane would wait for an end forever.
    since = log_size(garbled_gateway)
    with sdk(garbled_gateway, api_key=KEY_B).responses.connect() as connection:
        for _ in range(2):
            connection.response.create(model=model, input="hi")
            events = until_terminal(connection)
            assert [event.type for event in events[:-1]] == read
            assert events[-1].type == "error" and events[-1].status == 502
            assert events[-1].error.code == "upstream_unreadable" and events[-1].error.message == UNREADABLE
    # Once a stream is open its failure is logged as an SSE stream's, a warning: the upstream's
    # fault (an answer refused whole is a 502 logged as an error, as over HTTP).
    errors = [record["event"] for record in log_records(garbled_gateway, since) if record["level"] in ("error", "critical")]
    assert errors == ([] if read else [f"request failed: {UNREADABLE}"] * 2)


def test_over_the_socket_a_stream_answered_whole_is_an_error_event(tmp_path_factory):
    # With no keys there is no guard to read the answer; a ``response.create`` answered with a
    # JSON object, not the event stream it asked for, is still no stream of the mode's.
    with GarbledUpstream() as upstream:
        env = {"LLM_BACKEND_LOCAL_MODELS": "false", "OPENAI_BASE_URL": upstream.api, "OPENAI_API_KEY": SERVICE_KEY}
        with LiveServer(tmp_path_factory.mktemp("garbled-open"), env=env) as gateway:
            with sdk(gateway).responses.connect() as connection:
                connection.response.create(model="gpt-deep", input="hi")
                [refused] = until_terminal(connection)
    assert refused.type == "error" and refused.status == 502 and refused.error.code == "upstream_unreadable"


def test_an_event_that_never_ends_ends_its_stream_at_the_read_limit(garbled_gateway, measured):
    # Every reader of a relayed stream once kept an event's bytes until it ended: this one
    # never does, and the gateway grew with it. The relay ends it past the limit, with the
    # error event a stream failing midway gets.
    since = log_size(garbled_gateway)
    client = sdk(garbled_gateway, api_key=KEY_B)
    with measured(garbled_gateway, READ_GROWTH):
        with pytest.raises(openai.APIError) as failed:
            for _ in client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True):
                pass
    assert failed.value.message == UNREADABLE
    assert any(f"an event longer than {READ_LIMIT} bytes" in said for said in logged(garbled_gateway, since, "warning"))
    assert logged(garbled_gateway, since, "error") == []  # a stream's 200 is sent: its end is no request failing


def test_an_answer_the_guard_must_read_past_the_read_limit_is_refused(garbled_gateway, measured):
    since = log_size(garbled_gateway)
    with measured(garbled_gateway, READ_GROWTH):
        answer = httpx.get(garbled_gateway.api + "/assistants", headers={"Authorization": f"Bearer {KEY_B}"}, timeout=60)
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["code"] == "upstream_unreadable"
    assert any(f"past {READ_LIMIT} bytes" in said for said in logged(garbled_gateway, since, "warning"))
    assert logged(garbled_gateway, since, "error") == [f"request failed: {UNREADABLE}"]  # the upstream's fault: a 502


@pytest.mark.parametrize("path, body", [
    ("/images/generations", {"model": "gpt-image-1", "prompt": "hi"}),
    ("/moderations", {"model": "omni-moderation-latest", "input": "hi"}),
])
def test_an_answer_that_can_show_no_object_is_passed_on_unread(garbled_gateway, path, body):
    # By the document these answers hold no object to record (ten base64 images the guard
    # read whole for nothing): they pass as the upstream sent them, read by no one.
    answer = httpx.post(garbled_gateway.api + path, json=body, headers={"Authorization": f"Bearer {KEY_B}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.content == b"<not json, and nothing of anyone's>"
