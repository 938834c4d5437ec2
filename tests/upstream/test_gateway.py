"""A pure gateway in front of a real upstream (this service with the real model), driven by
the official SDK: what the client gets is the upstream's answer."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.support.clients import TLS
from tests.support.server import access_lines, log_size
from tests.upstream.conftest import sdk

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
# SmolLM2's end-of-text and end-of-turn tokens: banned, the model cannot stop by itself.
NO_EOS = {"0": -100, "2": -100}


@pytest.fixture(scope="module")
def proxied(gateway) -> openai.OpenAI:
    return sdk(gateway)


def test_chat_completion_is_the_upstreams_answer(proxied, server, gateway):
    request = dict(model=MODEL, messages=MESSAGES, max_tokens=8, temperature=0, seed=3)
    through = proxied.chat.completions.with_raw_response.create(**request)
    completion = through.parse()
    direct = sdk(server).chat.completions.create(**request)
    assert completion.model == MODEL
    assert completion.choices[0].message.content == direct.choices[0].message.content
    # How many prompt tokens were cached depends on what the upstream served before.
    cached = {"prompt_tokens_details"}
    assert completion.usage.model_dump(exclude=cached) == direct.usage.model_dump(exclude=cached)
    assert completion.usage.prompt_tokens_details.cached_tokens is not None  # relayed as sent
    assert completion.system_fingerprint == direct.system_fingerprint
    assert through.headers["x-upstream-request-id"].startswith("req_")


def test_a_prediction_goes_to_the_upstream_as_sent(proxied):
    """The upstream (this service with the model) honours it: its usage says so, relayed."""
    request = dict(model=MODEL, messages=MESSAGES, max_tokens=12, temperature=0)
    first = proxied.chat.completions.create(**request)
    answer = first.choices[0].message.content
    again = proxied.chat.completions.create(**request, prediction={"type": "content", "content": answer})
    assert again.choices[0].message.content == answer
    assert again.usage.completion_tokens_details.accepted_prediction_tokens > 0


def test_chat_completion_stream_is_relayed_chunk_by_chunk(proxied):
    chunks = list(proxied.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=6, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")


def test_completion_is_proxied(proxied):
    completion = proxied.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=4)
    assert completion.object == "text_completion"
    assert completion.model == MODEL
    assert completion.choices[0].text
    assert completion.usage.completion_tokens <= 4


def test_completion_stream_is_proxied(proxied):
    chunks = list(proxied.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=4, stream=True))
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_embeddings_are_the_upstreams_vectors(proxied, server):
    through = proxied.embeddings.create(model=MODEL, input=["hello world", "x"])
    direct = sdk(server).embeddings.create(model=MODEL, input=["hello world", "x"])
    assert [item.embedding for item in through.data] == [item.embedding for item in direct.data]
    assert through.usage.prompt_tokens == direct.usage.prompt_tokens


def test_models_list_is_the_upstreams_list(proxied, server):
    assert [m.id for m in proxied.models.list()] == [m.id for m in sdk(server).models.list()]


def test_model_retrieve_is_proxied(proxied):
    assert proxied.models.retrieve(MODEL).id == MODEL


def test_unknown_model_is_the_upstreams_404(proxied):
    with pytest.raises(openai.NotFoundError) as raised:
        proxied.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=1)
    assert raised.value.code == "model_not_found"
    assert "x-upstream-request-id" in raised.value.response.headers


def test_upstream_bad_request_is_relayed_with_its_param(proxied):
    # Valid for the spec (so the gateway forwards it), refused by the upstream's engine.
    with pytest.raises(openai.BadRequestError) as raised:
        proxied.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1, logit_bias={"hello": 1})
    assert raised.value.param == "logit_bias"
    assert "x-upstream-request-id" in raised.value.response.headers


def test_unserved_operation_is_forwarded_verbatim(gateway, server):
    # The upstream does not serve fine-tuning either: its own 404 must come back byte for
    # byte, and its log proves the request went there.
    before = log_size(server)
    through = httpx.get(gateway.api + "/fine_tuning/jobs", params={"limit": 2}, timeout=30, verify=TLS)
    direct = httpx.get(server.api + "/fine_tuning/jobs", params={"limit": 2}, timeout=30, verify=TLS)
    assert through.status_code == direct.status_code == 404
    assert through.content == direct.content
    assert len(access_lines(server, "/v1/fine_tuning/jobs", since=before, expect=2)) == 2


def test_multipart_upload_is_forwarded_to_the_upstream(gateway, server):
    # The upstream (this service with its local Whisper) reads the upload the gateway
    # re-encoded, fields and file: its 400 naming the unreadable file comes back.
    before = log_size(server)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gateway).audio.transcriptions.create(
            file=("speech.wav", b"RIFF0000WAVE"), model="whisper-1", response_format="text", include=["logprobs"]
        )
    assert raised.value.param == "include"  # the array field arrived (logprobs need json)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(gateway).audio.transcriptions.create(file=("speech.wav", b"RIFF0000WAVE"), model="whisper-1")
    assert raised.value.param == "file" and "x-upstream-request-id" in raised.value.response.headers
    lines = access_lines(server, "/v1/audio/transcriptions", since=before, expect=2)
    assert [line["method"] for line in lines] == ["POST", "POST"]


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def test_a_forwarded_upload_is_streamed_not_held_in_memory(gateway, server):
    """A pure gateway forwards Files: a 160 MB upload reaches the upstream whole while the
    gateway's peak resident memory grows by far less than the file (it spools to disk and
    sends from there; it held the whole body, twice over, before)."""
    size, part = 160 << 20, bytes(range(256)) * 4096  # 1 MB parts
    before = peak_rss_mb(gateway.process.pid)

    def body():
        for _ in range(size // len(part)):
            yield part

    boundary = "llmbackendupload"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nuser_data\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def multipart():
        yield head
        yield from body()
        yield tail

    answer = httpx.post(
        gateway.api + "/files",
        content=multipart(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(head) + size + len(tail))},
        timeout=300,
        verify=TLS,
    )
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert created["bytes"] == size
    grown = peak_rss_mb(gateway.process.pid) - before
    assert grown < 40, f"the gateway's peak memory grew by {grown:.0f} MB for a {size >> 20} MB upload"
    digest = hashlib.sha256()
    with httpx.stream("GET", f"{gateway.api}/files/{created['id']}/content", timeout=300, verify=TLS) as download:
        for chunk in download.iter_bytes():
            digest.update(chunk)
    expected = hashlib.sha256()
    for chunk in body():
        expected.update(chunk)
    assert digest.hexdigest() == expected.hexdigest()
    sdk(server).files.delete(created["id"])


def test_client_disconnect_closes_the_upstream_stream(gateway, server):
    before = log_size(server)
    stream = sdk(gateway).completions.create(
        model=MODEL, prompt="1, 2, 3,", max_tokens=1900, logit_bias=NO_EOS, stream=True
    )
    received = [next(iter(stream)) for _ in range(2)]
    assert received
    stream.close()
    # The upstream logs its request when it ends. Relayed to the end, 1900 tokens take
    # well over a minute here; closed, the upstream request ends within seconds.
    deadline = time.monotonic() + 30
    while not access_lines(server, "/v1/completions", since=before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert access_lines(server, "/v1/completions", since=before), "the upstream request is still running"


def test_client_giving_up_on_a_whole_answer_cancels_the_upstream_request(gateway, server):
    before_upstream, before_gateway = log_size(server), log_size(gateway)
    request = {"model": MODEL, "prompt": "1, 2, 3,", "max_tokens": 1900, "logit_bias": NO_EOS}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gateway.api + "/completions", json=request, timeout=httpx.Timeout(60, read=2), verify=TLS)
    # Run to the end, 1900 tokens would take half a minute and be logged 200. The gateway
    # hangs up on the upstream instead, whose request ends at once, logged 499.
    [upstream_line] = access_lines(server, "/v1/completions", since=before_upstream, expect=1)
    assert upstream_line["status"] == 499
    [gateway_line] = access_lines(gateway, "/v1/completions", since=before_gateway, expect=1)
    assert gateway_line["status"] == 499


def test_fields_beyond_the_spec_are_relayed_for_upstream_models(proxied):
    # The gateway does not know `grammar`; its upstream (this service, local model) honours
    # it: the answer follows the grammar only if the field reached the upstream as sent.
    completion = proxied.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=8, extra_body={"grammar": 'root ::= "relayed"'}
    )
    assert completion.choices[0].message.content == "relayed"


def test_an_unknown_field_is_the_upstreams_to_refuse(proxied):
    # Relayed too: the refusal is the upstream's (its model is local there), passed back.
    with pytest.raises(openai.BadRequestError) as refused:
        proxied.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2, extra_body={"foo_unknown": 1})
    assert refused.value.body["message"] == "Unrecognized request argument supplied: foo_unknown"
