"""Anthropic's Message Batches through the official ``anthropic`` SDK (issue #50) against a
live server with keys and the real local model: a batch's requests run on the batch runner
as ``POST /v1/messages`` requests of the key that created it; results, counts, list,
retrieve, cancel and delete in Anthropic's shapes; tenants and kinds apart (another key's
batch is not found, OpenAI's batch list never shows a Message Batch); each request metered
as a Messages request. Requests ask for a few tokens at temperature 0: the module's time is
the server's start and a handful of short answers."""

from __future__ import annotations

import time

import anthropic
import httpx
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS, admin_sdk, keyed_server, sdk
from tests.support.usage import project_completions

KEY_A, KEY_B = "sk-msgbatch-a", "sk-msgbatch-b"
ADMIN = "sk-admin-msgbatch"


def params(text: str, max_tokens: int = 3, **extra) -> dict:
    return {"model": MODEL, "max_tokens": max_tokens, "temperature": 0, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"LLM_BACKEND_BATCH_NICE": "2"}  # as tests/e2e/test_batches.py: the busy machine starves nice 19
    with keyed_server(tmp_path_factory.mktemp("msgbatches"), [KEY_A, KEY_B], [f"ops={ADMIN}"], env=env,
                      config="usage_flush_seconds: 0.5\n") as server:
        yield server


def client_of(live, key: str = KEY_A) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.base_url, api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def client(live):
    return client_of(live)


def ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while (batch := client.messages.batches.retrieve(batch_id)).processing_status != "ended":
        assert time.monotonic() < deadline, f"{batch_id} still {batch.processing_status}: {batch.request_counts}"
        time.sleep(0.25)
    return batch


@pytest.fixture(scope="module")
def finished(client):
    """A batch of four: one answered, one naming no model served here, one with a field the
    Messages API does not have, one asking to stream."""
    batch = client.messages.batches.create(requests=[
        {"custom_id": "ok", "params": params("Say hi.")},
        {"custom_id": "unknown-model", "params": {**params("Hi"), "model": "no-such-model"}},
        {"custom_id": "unknown-field", "params": {**params("Hi"), "frequency_penalty": 1}},
        {"custom_id": "streamed", "params": params("Hi", stream=True)},
    ])
    return batch, ended(client, batch.id)


def test_a_created_batch_is_in_progress_with_its_requests_processing(finished):
    created, _ = finished
    assert created.type == "message_batch" and created.id.startswith("msgbatch_")
    assert created.processing_status == "in_progress" and created.results_url is None and created.ended_at is None
    counts = created.request_counts
    # Every request is processing until the batch ends (the streamed one too, refused
    # before it runs), as Anthropic counts them.
    assert (counts.processing, counts.errored, counts.succeeded) == (4, 0, 0)
    assert 86000 < (created.expires_at - created.created_at).total_seconds() <= 86400


def test_an_ended_batch_counts_and_points_at_its_results(finished):
    _, done = finished
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 1, 3, 0, 0)
    assert done.ended_at >= done.created_at and done.archived_at is None and done.cancel_initiated_at is None
    assert done.results_url.endswith(f"/v1/messages/batches/{done.id}/results")


def test_the_results_are_one_per_request_in_anthropics_shapes(client, finished):
    _, done = finished
    results = {entry.custom_id: entry.result for entry in client.messages.batches.results(done.id)}
    assert set(results) == {"ok", "unknown-model", "unknown-field", "streamed"}
    message = results["ok"]
    assert message.type == "succeeded" and message.message.type == "message" and message.message.model == MODEL
    assert message.message.content[0].type == "text" and message.message.content[0].text
    assert 0 < message.message.usage.output_tokens <= 3 and message.message.usage.input_tokens > 0
    unknown, streamed = results["unknown-model"], results["streamed"]
    assert unknown.type == "errored" and unknown.error.type == "error" and unknown.error.error.type == "not_found_error"
    assert streamed.type == "errored" and streamed.error.error.type == "invalid_request_error"
    assert "stream" in streamed.error.error.message.lower()
    field = results["unknown-field"]
    assert field.type == "errored" and field.error.error.type == "invalid_request_error"
    assert "frequency_penalty" in field.error.error.message


def test_retrieve_and_list_show_the_batch_to_its_owner_only(live, client, finished):
    _, done = finished
    assert client.messages.batches.retrieve(done.id).id == done.id
    page = client.messages.batches.list(limit=1000)
    assert done.id in [batch.id for batch in page.data] and page.first_id == page.data[0].id
    other = client_of(live, KEY_B)
    with pytest.raises(anthropic.NotFoundError) as raised:
        other.messages.batches.retrieve(done.id)
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == "not_found_error"
    assert done.id not in [batch.id for batch in other.messages.batches.list().data]
    for call in (other.messages.batches.cancel, other.messages.batches.delete):
        with pytest.raises(anthropic.NotFoundError):
            call(done.id)


def test_openais_batches_and_message_batches_are_apart(live, client, finished):
    _, done = finished
    openai_client = sdk(live, KEY_A)
    assert done.id not in [batch.id for batch in openai_client.batches.list(limit=100).data]
    with pytest.raises(Exception) as raised:
        openai_client.batches.retrieve(done.id)
    assert getattr(raised.value, "status_code", None) == 404


def test_an_openai_batch_naming_v1_messages_stays_refused(live):
    openai_client = sdk(live, KEY_A)
    uploaded = openai_client.files.create(file=("in.jsonl", b'{"custom_id": "a", "method": "POST", "url": "/v1/messages", '
                                                             b'"body": {}}\n'), purpose="batch")
    with pytest.raises(Exception) as raised:
        openai_client.batches.create(input_file_id=uploaded.id, endpoint="/v1/messages", completion_window="24h")
    assert getattr(raised.value, "status_code", None) == 400 and raised.value.body["param"] == "endpoint"


def test_a_page_goes_back_and_forth_by_before_and_after_id(client):
    made = [client.messages.batches.create(requests=[{"custom_id": "x", "params": params("Hi", stream=True)}]).id
            for _ in range(3)]  # refused requests only: these end without running anything
    newest_first = list(reversed(made))
    first = client.messages.batches.list(limit=2)
    assert [batch.id for batch in first.data] == newest_first[:2] and first.has_more
    second = client.messages.batches.list(limit=2, after_id=first.last_id)
    assert second.data[0].id == newest_first[2]
    back = client.messages.batches.list(limit=2, before_id=newest_first[2])
    assert [batch.id for batch in back.data] == newest_first[:2] and back.first_id == newest_first[0]


def test_cancel_ends_a_batch_with_its_requests_canceled_or_answered(client):
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"c{i}", "params": params(f"Count to {i}.", max_tokens=16)} for i in range(6)
    ])
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended") and canceling.cancel_initiated_at is not None
    done = ended(client, batch.id)
    counts = done.request_counts
    assert counts.canceled + counts.succeeded == 6 and counts.canceled > 0 and counts.processing == 0
    kinds = {entry.custom_id: entry.result.type for entry in client.messages.batches.results(batch.id)}
    assert len(kinds) == 6 and set(kinds.values()) <= {"canceled", "succeeded"}
    with pytest.raises(anthropic.BadRequestError):  # ended: nothing left to cancel
        client.messages.batches.cancel(batch.id)


def test_delete_waits_for_the_end_and_results_too(live, client):
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"d{i}", "params": params(f"Name a colour, {i}.", max_tokens=16)} for i in range(4)
    ])
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.batches.delete(batch.id)
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    early = httpx.get(f"{live.base_url}/v1/messages/batches/{batch.id}/results", verify=TLS,
                      headers={"x-api-key": KEY_A, "anthropic-version": "2023-06-01"})
    assert early.status_code == 400 and early.json()["error"]["type"] == "invalid_request_error"
    client.messages.batches.cancel(batch.id)
    ended(client, batch.id)
    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_custom_ids_are_checked_when_the_batch_is_created(client):
    with pytest.raises(anthropic.BadRequestError) as twice:
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params("Hi")}] * 2)
    assert "custom_id" in twice.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "not allowed!", "params": params("Hi")}])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[])


def test_a_batchs_requests_are_metered_as_messages_requests_of_its_project(live):
    org = admin_sdk(live, ADMIN).admin.organization
    project = org.projects.create(name="message-batches")
    key = org.projects.service_accounts.create(project.id, name="batcher").api_key.value
    client = client_of(live, key)
    batch = client.messages.batches.create(requests=[{"custom_id": "m", "params": params("Say yes.")}])
    ended(client, batch.id)
    [entry] = list(client.messages.batches.results(batch.id))
    expected = entry.result.message.usage.output_tokens
    results = project_completions(org, project.id, lambda results: results and sum(r.output_tokens for r in results) >= expected)
    assert sum(r.num_model_requests for r in results) == 1 and sum(r.output_tokens for r in results) == expected
