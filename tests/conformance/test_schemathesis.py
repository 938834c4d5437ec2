"""schemathesis fuzzes the operations the local backend serves, against the pristine
OpenAI document (the stored-completion operations: tests/storage/test_conformance.py).

Checks: not_a_server_error, status_code_conformance (as ``openai_status_conformance``, see
tests/conformance/checks.py), content_type_conformance and response_schema_conformance.
"""

from __future__ import annotations

import base64
import math
import struct
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from llm_backend.spec.adapter import is_served, operations
from llm_backend.spec.loader import load_document
from tests.conftest import MODEL
from tests.support.fuzz import SEED
from tests.storage.test_conformance import OPERATIONS as STORED_COMPLETION_OPERATIONS
from tests.conformance.checks import (
    ERROR_STATUSES,
    PLAIN_SCHEMAS,
    plain_schema_conformance,
    is_event_stream,
    is_negative,
    openai_status_conformance,
    sse_payload_conformance,
)

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openai.yaml"

# Every OpenAI operation a controller serves, found the way the router finds them; the
# stored-completion ones need stored objects and keys: tests/storage/test_conformance.py.
SERVED = sorted(
    operation["operationId"]
    for path, _, operation in operations(load_document(SPEC, None))
    if is_served(operation) and operation["operationId"] not in STORED_COMPLETION_OPERATIONS
    # Query variants (``/responses?beta=true``) share the plain operation's route and controller.
    and "?" not in path
)

# Generation is bounded so a fuzz run stays short; the values stay within the spec.
MAX_GENERATED_TOKENS = 8

schema = schemathesis.openapi.from_path(SPEC).include(operation_id=SERVED)
# Operations that run the model for every example: fewer examples in the CI run (each costs
# up to a second of generation on 2 cores), the same in `make fuzz`.
GENERATING = ["createChatCompletion", "createCompletion", "createResponse", "Compactconversation"]
quick = schemathesis.openapi.from_path(SPEC).include(operation_id=SERVED).exclude(operation_id=GENERATING)
# Their CI run also leaves out schemathesis' coverage phase: it walks every boundary case of
# the schema, the same cases every run (thousands for createResponse and compaction: over
# three minutes of generation); `make fuzz` keeps it. The random fuzzing phase remains.
generating = schemathesis.openapi.from_path(SPEC).include(operation_id=GENERATING)
generating.config.phases.update(phases=["examples", "fuzzing"])
def _bound(case) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    if not is_negative(case) and "model" in body:
        # Unknown model ids would turn nearly every valid case into a 404 (uploads have none).
        body["model"] = MODEL
    operation = case.operation.definition.raw.get("operationId")
    # (fields, cap): the Responses API's max_output_tokens has a minimum of 16.
    limits = {
        "createCompletion": (("max_tokens",), MAX_GENERATED_TOKENS),
        "createChatCompletion": (("max_tokens", "max_completion_tokens"), MAX_GENERATED_TOKENS),
        "createResponse": (("max_output_tokens",), 16),
    }
    fields, cap = limits.get(operation, ((), MAX_GENERATED_TOKENS))
    for field in fields:
        value = body.get(field)
        if value is None or (isinstance(value, (int, float)) and value > cap):
            body[field] = cap
    if operation == "createFile" and not is_negative(case):
        # A JSON part for an object field (OpenAPI's encoding) crashes Connexion's
        # handler-side typing, so llm_backend/spec/forms.py refuses it (400); SDKs send
        # bracketed fields, which tests/e2e/test_files.py covers.
        body.pop("expires_after", None)
    if operation == "createFile" and body.get("purpose") == "evals":
        # The document contradicts itself: createFile accepts purpose "evals", its
        # OpenAIFile response enum lacks it. We answer as OpenAI does (the purpose uploaded).
        body["purpose"] = "user_data"
    if isinstance(body.get("n"), int) and body["n"] > 2:
        body["n"] = 2


@pytest.fixture(scope="module")
def base_url(server):
    return server.api


@quick.parametrize()
@seed(SEED)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_served_operations_conform_to_the_spec(case, base_url):
    _call_and_check(case, base_url)


@generating.parametrize()
@seed(SEED)
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_generating_operations_conform_to_the_spec(case, base_url):
    _call_and_check(case, base_url)


def _is_base64_embedding(case) -> bool:
    return (
        case.operation.definition.raw.get("operationId") == "createEmbedding"
        and isinstance(case.body, dict)
        and case.body.get("encoding_format") == "base64"
    )


def base64_embedding_conformance(ctx, response, case):
    """The spec types `embedding` as an array of floats only, but OpenAI (and we) answer a
    base64 string of little-endian float32 for encoding_format=base64: check that instead."""
    if response.status_code != 200:
        return None
    for item in response.json()["data"]:
        raw = base64.b64decode(item["embedding"], validate=True)
        assert raw and len(raw) % 4 == 0, "base64 embedding is not a float32 array"
        assert all(math.isfinite(value) for value in struct.unpack(f"<{len(raw) // 4}f", raw))
    return None


def _call_and_check(case, base_url) -> None:
    _bound(case)
    response = case.call(base_url=base_url, timeout=120)
    checks = [schemathesis.checks.not_a_server_error, openai_status_conformance, content_type_conformance]
    # Where the document's schema does not describe the wire format, a check of ours that
    # does: base64 embeddings, and the payloads of an event stream.
    if _is_base64_embedding(case):
        checks.append(base64_embedding_conformance)
    elif response.status_code == 200 and is_event_stream(response):
        checks.append(sse_payload_conformance)
    elif case.operation.definition.raw.get("operationId") in PLAIN_SCHEMAS:
        checks.append(plain_schema_conformance)
    elif response.status_code not in ERROR_STATUSES:
        # An error body is checked as OpenAI's ErrorResponse by openai_status_conformance
        # (the document declares some 404s, deleteResponse's, as a bare Error object;
        # OpenAI sends it wrapped in {"error": ...}, as every other error).
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)


@pytest.mark.slow
@schema.parametrize()
@seed(SEED)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_served_operations_conform_to_the_spec_long_run(case, base_url):
    """`make fuzz`: the same checks, many more (random) examples."""
    _call_and_check(case, base_url)


def test_the_fuzzed_operations_are_the_local_ones():
    assert SERVED == [
        "Compactconversation",
        "Getinputtokencounts",
        "cancelResponse",
        "cancelVectorStoreFileBatch",
        "createChatCompletion",
        "createCompletion",
        "createConversation",
        "createConversationItems",
        "createEmbedding",
        "createFile",
        "createResponse",
        "createVectorStore",
        "createVectorStoreFile",
        "createVectorStoreFileBatch",
        "deleteConversation",
        "deleteConversationItem",
        "deleteFile",
        "deleteResponse",
        "deleteVectorStore",
        "deleteVectorStoreFile",
        "downloadFile",
        "getConversation",
        "getConversationItem",
        "getResponse",
        "getVectorStore",
        "getVectorStoreFile",
        "getVectorStoreFileBatch",
        "listConversationItems",
        "listFiles",
        "listFilesInVectorStoreBatch",
        "listInputItems",
        "listModels",
        "listVectorStoreFiles",
        "listVectorStores",
        "modifyVectorStore",
        "retrieveFile",
        "retrieveModel",
        "retrieveVectorStoreFileContent",
        "searchVectorStore",
        "updateConversation",
        "updateVectorStoreFileAttributes",
        "usage-audio-speeches",
        "usage-audio-transcriptions",
        "usage-code-interpreter-sessions",
        "usage-completions",
        "usage-costs",
        "usage-embeddings",
        "usage-file-search-calls",
        "usage-images",
        "usage-moderations",
        "usage-vector-stores",
        "usage-web-search-calls",
    ]
