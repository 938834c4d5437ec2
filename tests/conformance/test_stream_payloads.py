"""The stream-payload check used by the conformance suite accepts real chunks and rejects
broken ones (so its passing means something)."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from tests.conformance.checks import validate_chunk
from tests.conftest import MODEL


@pytest.mark.parametrize(
    "operation, path, body",
    [
        ("createChatCompletion", "/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
        ("createCompletion", "/completions", {"prompt": "Hi"}),
    ],
)
def test_real_chunks_pass_and_broken_chunks_fail(server, operation, path, body):
    request = {"model": MODEL, "max_tokens": 4, "stream": True, "stream_options": {"include_usage": True}, **body}
    with httpx.stream("POST", server.api + path, json=request, timeout=60) as response:
        payloads = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    for chunk in chunks:
        validate_chunk(operation, chunk)
    broken = dict(chunks[0])
    broken["object"] = 42
    with pytest.raises(jsonschema.ValidationError):
        validate_chunk(operation, broken)
