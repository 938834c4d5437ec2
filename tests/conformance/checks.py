"""Checks shared by the conformance suites.

The OpenAI document lists only 200 for most operations, so a correct 4xx would count as an
undocumented status. ``openai_status_conformance`` keeps schemathesis' status check but
accepts OpenAI's error statuses when the body is a valid OpenAI ``ErrorResponse`` (for
spec-valid requests, only the statuses that a deliberate decision of ours explains).
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml
from schemathesis.specs.openapi.checks import status_code_conformance

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openai.yaml"

# Statuses OpenAI uses for errors, and for spec-valid requests the codes we answer
# deliberately: the local engine cannot honour a parameter, the prompt does not fit, the
# model or stored object does not exist, the queue is full.
ERROR_STATUSES = {400, 401, 403, 404, 409, 413, 422, 429, 501}
DELIBERATE_FOR_VALID_REQUESTS = {
    400: {"unsupported_parameter", "context_length_exceeded", "invalid_value"},
    404: {"model_not_found", "not_found"},
    429: {"rate_limit_exceeded"},
}
_components = yaml.load(SPEC.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["components"]
_error_validator = jsonschema.Draft202012Validator(
    {"$ref": "#/components/schemas/ErrorResponse", "components": _components}
)


def is_negative(case) -> bool:
    meta = case.meta
    return bool(meta and meta.generation.mode.is_negative)


def openai_status_conformance(ctx, response, case):
    if response.status_code in ERROR_STATUSES:
        body = response.json()
        _error_validator.validate(body)
        if not is_negative(case):
            allowed = DELIBERATE_FOR_VALID_REQUESTS.get(response.status_code, set())
            assert body["error"]["code"] in allowed, (
                f"spec-valid request refused with {response.status_code}: {body['error']}"
            )
        return None
    return status_code_conformance(ctx, response, case)


