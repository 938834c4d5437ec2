"""schemathesis fuzzes Anthropic's Messages operations (``openapi/anthropic.yaml``: Messages,
count_tokens, Message Batches) against their own document on the session's live server (the
real local model): no server error, and every answer, a Message, a Message Batch or an
error, in the document's shape (Anthropic's error body for every refusal) with its declared
content type. A Message Batch id is, half the time (a draw seeded by the run's seed and the
case), a real batch's that has ended, so retrieve, cancel, delete and results reach their
success paths and not only their 404s. The OpenAI document's fuzz (``test_schemathesis.py``)
judges its answers by OpenAI's rules; this document has its own. A fresh seed every run
(tests/support/fuzz.py)."""

from __future__ import annotations

import random
import time

import httpx
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from llm_backend.settings import PROJECT_ROOT
from llm_backend.spec.loader import ANTHROPIC_SPEC, load_document
from tests.conftest import MODEL
from tests.support.fuzz import SEED

DOCUMENT = load_document(PROJECT_ROOT / "openapi" / ANTHROPIC_SPEC, None)
schema = schemathesis.openapi.from_dict(DOCUMENT)
MAX_GENERATED_TOKENS = 8


def _bounded(case) -> None:
    """A drawn body asks the real model for a few tokens, of the model the server has;
    answered whole (a stream's events are the e2e tests': tests/e2e/test_messages.py)."""
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("model"), str):
        body["model"] = MODEL
    if isinstance(body.get("max_tokens"), int) and body["max_tokens"] > MAX_GENERATED_TOKENS:
        body["max_tokens"] = MAX_GENERATED_TOKENS
    if body.get("stream") is True:
        body["stream"] = False


def _ended_batch(base_url: str) -> str:
    """A real Message Batch that has ended: its one request refused before it runs (it
    asks to stream), so the runner ends it at once, with a result to read."""
    headers = {"anthropic-version": "2023-06-01"}
    request = {"custom_id": "fuzz", "params": {"model": MODEL, "max_tokens": 1, "stream": True, "messages": []}}
    made = httpx.post(base_url + "/v1/messages/batches", json={"requests": [request]}, headers=headers, timeout=30)
    assert made.status_code == 200, made.text
    batch_id = made.json()["id"]
    for _ in range(200):
        if httpx.get(f"{base_url}/v1/messages/batches/{batch_id}", headers=headers).json()["processing_status"] == "ended":
            return batch_id
        time.sleep(0.05)
    raise AssertionError(f"{batch_id} did not end")


def _aimed(case, base_url: str) -> None:
    """Half the cases naming a Message Batch name a real one (a fresh one each: a delete
    drawn before them takes its batch away)."""
    parameters = case.path_parameters or {}
    if "message_batch_id" in parameters and random.Random(f"{SEED}:{case.operation.label}:{parameters}").random() < 0.5:
        parameters["message_batch_id"] = _ended_batch(base_url)


def test_the_document_has_the_served_operations():
    assert sorted(operation["operationId"] for item in DOCUMENT["paths"].values()
                  for method, operation in item.items() if method != "parameters") == [
        "messageBatchesCancel", "messageBatchesCreate", "messageBatchesDelete", "messageBatchesList",
        "messageBatchesResults", "messageBatchesRetrieve", "messagesCountTokens", "messagesCreate",
    ]


@schema.parametrize()
@seed(SEED)
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_messages_operations_conform_to_their_document(case, server):
    _bounded(case)
    _aimed(case, server.base_url)
    response = case.call(base_url=server.base_url + "/v1", headers={"anthropic-version": "2023-06-01"}, timeout=120)
    case.validate_response(
        response, checks=[schemathesis.checks.not_a_server_error, response_schema_conformance, content_type_conformance]
    )
