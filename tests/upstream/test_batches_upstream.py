"""Batches whose lines name an upstream model: run here, line by line, against the upstream
(its answers land in our output file; the upstream never sees a batch or our file ids); a
pure gateway forwards the whole batch with its input file (it keeps no files). The upstream
is real: the session's live server (this service with the real model)."""

from __future__ import annotations

from tests.conftest import MODEL
from tests.support.batches import chat_lines, file_lines, submit, wait
from tests.support.clients import sdk
from tests.support.server import access_lines, log_size

def test_an_upstream_models_batch_runs_here_line_by_line(mixed, server):
    before = log_size(server)
    client = sdk(mixed)
    done = wait(client, submit(client, chat_lines(3, MODEL)).id)
    assert done.status == "completed", done.errors
    output = file_lines(client, done.output_file_id)
    assert sorted(item["custom_id"] for item in output) == ["r0", "r1", "r2"]
    assert {item["response"]["body"]["model"] for item in output} == {MODEL}
    assert len(access_lines(server, "/v1/chat/completions", since=before, expect=3)) == 3
    assert access_lines(server, "/v1/batches", since=before) == []
    assert access_lines(server, "/v1/files", since=before) == []
    assert done.usage.input_tokens == sum(item["response"]["body"]["usage"]["prompt_tokens"] for item in output)


def test_a_pure_gateway_forwards_the_batch_with_its_file(gateway, server):
    before = log_size(server)
    client = sdk(gateway)
    batch = submit(client, chat_lines(2, MODEL))
    assert [line["method"] for line in access_lines(server, "/v1/batches", since=before, expect=1)] == ["POST"]
    assert access_lines(server, "/v1/files", since=before, expect=1)
    done = wait(client, batch.id)
    assert done.status == "completed", done.errors
    assert sorted(item["custom_id"] for item in file_lines(client, done.output_file_id)) == ["r0", "r1"]
    # The upstream holds the batch and its files: it answers for them itself.
    assert sdk(server).batches.retrieve(batch.id).output_file_id == done.output_file_id
