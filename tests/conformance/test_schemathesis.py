"""schemathesis fuzzes every operation we serve, against the pristine OpenAI document.

Checks: not_a_server_error, status_code_conformance, content_type_conformance and
response_schema_conformance. The OpenAI document lists only 200 for most operations, so a
correct 4xx would count as undocumented; ``openai_status_conformance`` keeps the check but
accepts OpenAI's error statuses when the body is a valid OpenAI ``ErrorResponse`` (for
spec-valid requests, only the statuses that a deliberate decision of ours explains).
"""

from __future__ import annotations

import base64
import math
import struct
from pathlib import Path

import jsonschema
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import MODEL

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openai.yaml"

# Every operation the service serves itself. Adding a controller means adding it here.
SERVED = ["createChatCompletion", "createCompletion", "createEmbedding", "listModels", "retrieveModel"]

# Statuses OpenAI uses for errors, and for spec-valid requests the codes we answer
# deliberately: the local engine cannot honour a parameter, the prompt does not fit, the
# model does not exist, the queue is full.
ERROR_STATUSES = {400, 401, 403, 404, 409, 413, 422, 429, 501}
DELIBERATE_FOR_VALID_REQUESTS = {
    400: {"unsupported_parameter", "context_length_exceeded", "invalid_value"},
    404: {"model_not_found"},
    429: {"rate_limit_exceeded"},
}
# Generation is bounded so a fuzz run stays short; the values stay within the spec.
MAX_GENERATED_TOKENS = 8

schema = schemathesis.openapi.from_path(SPEC).include(operation_id=SERVED)
_components = yaml.load(SPEC.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["components"]
_error_validator = jsonschema.Draft202012Validator(
    {"$ref": "#/components/schemas/ErrorResponse", "components": _components}
)


def _is_negative(case) -> bool:
    meta = case.meta
    return bool(meta and meta.generation.mode.is_negative)


def openai_status_conformance(ctx, response, case):
    if response.status_code in ERROR_STATUSES:
        body = response.json()
        _error_validator.validate(body)
        if not _is_negative(case):
            allowed = DELIBERATE_FOR_VALID_REQUESTS.get(response.status_code, set())
            assert body["error"]["code"] in allowed, (
                f"spec-valid request refused with {response.status_code}: {body['error']}"
            )
        return None
    return status_code_conformance(ctx, response, case)


def _bound(case) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    if not _is_negative(case):
        # Unknown model ids would turn nearly every valid case into a 404.
        body["model"] = MODEL
    for field in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(field), int) and body[field] > MAX_GENERATED_TOKENS:
            body[field] = MAX_GENERATED_TOKENS
    if case.operation.definition.raw.get("operationId") == "createCompletion" and "max_tokens" not in body:
        body["max_tokens"] = MAX_GENERATED_TOKENS
    if case.operation.definition.raw.get("operationId") == "createChatCompletion" and not any(
        field in body for field in ("max_tokens", "max_completion_tokens")
    ):
        body["max_completion_tokens"] = MAX_GENERATED_TOKENS
    if isinstance(body.get("n"), int) and body["n"] > 2:
        body["n"] = 2


@pytest.fixture(scope="module")
def base_url(server):
    return server.api


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_served_operations_conform_to_the_spec(case, base_url):
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
    # The spec's one known gap: see base64_embedding_conformance.
    checks.append(base64_embedding_conformance if _is_base64_embedding(case) else response_schema_conformance)
    case.validate_response(response, checks=checks)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
def test_served_operations_conform_to_the_spec_long_run(case, base_url):
    """`make fuzz`: the same checks, many more (random) examples."""
    _call_and_check(case, base_url)
