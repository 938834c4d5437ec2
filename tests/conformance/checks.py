"""Checks shared by the conformance suites.

The OpenAI document lists only 200 for most operations, so a correct 4xx would count as an
undocumented status. ``openai_status_conformance`` keeps schemathesis' status check but
accepts OpenAI's error statuses when the body is a valid OpenAI ``ErrorResponse`` (for
spec-valid requests, only the statuses that a deliberate decision of ours explains).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import yaml
from schemathesis.specs.openapi.checks import status_code_conformance

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openai.yaml"

# Statuses OpenAI uses for errors, and for spec-valid requests the codes we answer
# deliberately: the local engine cannot honour a parameter, the prompt does not fit, the
# model or stored object does not exist, the queue is full.
ERROR_STATUSES = {400, 401, 403, 404, 409, 413, 422, 429}
DELIBERATE_FOR_VALID_REQUESTS = {
    # invalid_body: a body that is not an object, which a body schema without ``type:
    # object`` (createConversationItems') does not exclude; OpenAI wants an object there too.
    # missing_required_parameter: createResponse's ``model``, optional in the document only
    # for OpenAI's stored prompts.
    400: {
        "unsupported_parameter",
        "context_length_exceeded",
        "invalid_value",
        "integer_out_of_range",
        "invalid_body",
        "missing_required_parameter",
        # a field the operation does not define: see DELIBERATE_MESSAGES below
        "unknown_parameter",
    },
    404: {"model_not_found", "not_found", "previous_response_not_found"},
    429: {"rate_limit_exceeded"},
}
# The same, for OpenAI's errors without a code, by the start of their message: a field the
# operation does not define (the document leaves objects open; OpenAI and local models
# refuse it: llm_backend/spec/unknown_fields.py), and cancelling a response that did not run
# in the background (OpenAI's own answer).
DELIBERATE_MESSAGES = {
    400: (
        "Unrecognized request argument",
        "Only responses created with 'background' set to true can be cancelled.",
    ),
}

# OpenAI's metadata limits, which the document states only in prose (16 pairs, keys up to 64
# characters, values up to 512: llm_backend/serving/metadata.py); OpenAI's codes for them.
# A fuzz run (seed 2435042712) sent a 92-character key.
METADATA_LIMIT_CODES = {"string_above_max_length", "object_above_max_properties"}


def _metadata_limit(error: dict) -> bool:
    param = error.get("param") or ""
    return error["code"] in METADATA_LIMIT_CODES and param.split(".")[0] == "metadata"


_components = yaml.load(SPEC.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["components"]
_error_validator = jsonschema.Draft202012Validator(
    {"$ref": "#/components/schemas/ErrorResponse", "components": _components}
)


def is_negative(case) -> bool:
    meta = case.meta
    return bool(meta and meta.generation.mode.is_negative)


def _unroutable_path_parameter(case) -> bool:
    values = [unquote(value) for value in (case.path_parameters or {}).values() if isinstance(value, str)]
    return any("/" in value or "\n" in value or "\r" in value for value in values)


def openai_status_conformance(ctx, response, case):
    if response.status_code in ERROR_STATUSES:
        body = response.json()
        _error_validator.validate(body)
        if not is_negative(case):
            allowed = DELIBERATE_FOR_VALID_REQUESTS.get(response.status_code, set())
            if _unroutable_path_parameter(case):
                # A "/" or a line break in an id cannot be routed (Starlette matches path
                # segments line by line); no id of ours has one, so 404 is the right answer.
                allowed = allowed | {"unknown_url"}
            if body["error"]["code"] is None and body["error"]["message"].startswith(DELIBERATE_MESSAGES.get(response.status_code, ("\0",))):
                return None
            if response.status_code == 400 and _metadata_limit(body["error"]):
                return None
            assert body["error"]["code"] in allowed, (
                f"spec-valid request refused with {response.status_code}: {body['error']}"
            )
        return None
    return status_code_conformance(ctx, response, case)




# What each streamed `data:` payload is, per the document (it describes the payload, not the
# SSE event around it; schemathesis' own SSE check reads the schema as the event's).
STREAM_PAYLOADS = {
    "createChatCompletion": "CreateChatCompletionStreamResponse",
    "createCompletion": "CreateCompletionResponse",
    "createResponse": "ResponseStreamEvent",
}
# Streams of named events (``event: <type>`` + ``data: <event>``), with no ``[DONE]``.
NAMED_EVENT_STREAMS = {"createResponse"}


def _payload_validator(schema_name: str):
    from llm_backend.spec.validation import RequestSchemaValidator  # nullable-aware 2020-12

    return RequestSchemaValidator({"$ref": f"#/components/schemas/{schema_name}", "components": _components})


_payload_validators = {operation: _payload_validator(name) for operation, name in STREAM_PAYLOADS.items()}


def is_event_stream(response) -> bool:
    return response.headers.get("content-type", [""])[0].startswith("text/event-stream")


def without_null_usage(event: dict) -> dict:
    """A Responses event whose response is not counted yet (``response.created``,
    ``.in_progress``, ``.failed``) carries ``"usage": null``, as OpenAI streams it (see
    unfinished_response_conformance): checked as the document's event without it."""
    response = event.get("response")
    if isinstance(response, dict) and response.get("usage", 0) is None:
        return {**event, "response": {key: value for key, value in response.items() if key != "usage"}}
    return event


def validate_chunk(operation: str, chunk: dict) -> None:
    if "error" in chunk:
        _error_validator.validate(chunk)
        return
    if operation == "createResponse":
        chunk = without_null_usage(chunk)
    if operation == "createCompletion":
        # OpenAI streams `finish_reason: null` until a choice's last chunk; the document's
        # CreateCompletionResponse, written for whole answers, types it as a string only.
        chunk = {**chunk, "choices": [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]}
    _payload_validators[operation].validate(chunk)


def sse_payload_conformance(ctx, response, case):
    """Every event of a stream is ``data: <chunk>`` with a chunk valid against the spec's
    stream schema (or an OpenAI error), and the stream ends with ``data: [DONE]``."""
    payloads = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert payloads, "an event stream without data events"
    operation = case.operation.definition.raw["operationId"]
    if operation in NAMED_EVENT_STREAMS:
        names = [line[len("event: "):] for line in response.text.splitlines() if line.startswith("event: ")]
        events = [json.loads(payload) for payload in payloads]
        assert names == [event["type"] for event in events], "event names differ from the payload types"
        for event in events:
            validate_chunk(operation, event)
        return None
    for payload in payloads[:-1]:
        validate_chunk(operation, json.loads(payload))
    if payloads[-1] != "[DONE]":
        _error_validator.validate(json.loads(payloads[-1]))
    return None


# Answers whose schema schemathesis misreads: a discriminator without a mapping names its
# branches by schema name ("Message"), where OpenAI's values are the item types
# ("message"). Validated with the plain 2020-12 meaning instead.
PLAIN_SCHEMAS = {
    "Compactconversation": "CompactResource",
    "createConversationItems": "ConversationItemList",
    "listConversationItems": "ConversationItemList",
    "getConversationItem": "ConversationItem",
    "listInputItems": "ResponseItemList",
}
_plain_validators = {operation: _payload_validator(name) for operation, name in PLAIN_SCHEMAS.items()}


def plain_schema_conformance(ctx, response, case):
    if response.status_code == 200:
        _plain_validators[case.operation.definition.raw["operationId"]].validate(response.json())
    return None


# A background response not yet finished has no usage: OpenAI answers `"usage": null`
# while it is queued or in progress (and when it was cancelled or failed before finishing), where the
# document's Response types usage as an object. Such an answer is checked as a Response
# without its null usage.
RESPONSE_OBJECT_OPERATIONS = {"createResponse", "getResponse", "cancelResponse"}
_response_validator = _payload_validator("Response")


def is_unfinished_response(case, response) -> bool:
    if case.operation.definition.raw.get("operationId") not in RESPONSE_OBJECT_OPERATIONS or response.status_code != 200:
        return False
    if not response.headers.get("content-type", [""])[0].startswith("application/json"):
        return False
    body = response.json()
    return body.get("usage", 0) is None and body.get("status") in ("queued", "in_progress", "cancelled", "failed")


def unfinished_response_conformance(ctx, response, case):
    body = dict(response.json())
    body.pop("usage")
    _response_validator.validate(body)
    return None
