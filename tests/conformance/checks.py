"""Checks shared by the conformance suites.

The OpenAI document lists only 200 for most operations, so a correct 4xx would count as an
undocumented status. ``openai_status_conformance`` keeps schemathesis' status check but
accepts OpenAI's error statuses when the body is a valid OpenAI ``ErrorResponse``; for a
spec-valid request, only a refusal listed in the table of documented limits of
docs/CONFORMANCE.md (read from there: it is the one list) passes, and a refused "unknown
field" must really be one the operation does not define.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import jsonschema
from connexion.spec import OpenAPISpecification
from schemathesis.specs.openapi.checks import status_code_conformance

from llm_backend.spec.adapter import operations, prepare
from llm_backend.spec.unknown_fields import unknown_fields
from tests.support.document import openai_document

ROOT = Path(__file__).resolve().parents[2]
LIMITS_DOC = ROOT / "docs" / "CONFORMANCE.md"
LIMITS_HEADING = "## Documented limits"

# Statuses OpenAI uses for errors.
ERROR_STATUSES = {400, 401, 403, 404, 409, 413, 422, 429}


@dataclass(frozen=True)
class Limit:
    """One row of the table: a refusal of spec-valid input that we answer on purpose."""

    status: int
    codes: tuple[str | None, ...]  # None: OpenAI's code-less errors
    message: str | None  # the start of the message, when the row names one
    params: tuple[str, ...]  # globs over OpenAI's parameter path; "-": none; "unknown field": see below
    operations: tuple[str, ...]  # globs over operationIds

    def matches(self, operation: str, status: int, error: dict) -> bool:
        if status != self.status or not any(glob_matches(name, operation) for name in self.operations):
            return False
        if error["code"] not in self.codes or not error["message"].startswith(self.message or ""):
            return False
        if self.params == ("unknown field",):
            return True  # checked against the schema by ``documented``
        return any(error["param"] is None if glob == "-" else glob_matches(glob, error["param"] or "") for glob in self.params)


def glob_matches(glob: str, value: str) -> bool:
    """``*`` matches anything; everything else, brackets of ``items[*]`` included, itself."""
    return re.fullmatch(re.escape(glob).replace(r"\*", ".*"), value) is not None


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _names(cell: str) -> tuple[str, ...]:
    return tuple(name.strip().strip("`") for name in cell.split(","))


def documented_limits(text: str | None = None) -> list[Limit]:
    """The rows of the documented-limits table in docs/CONFORMANCE.md: ``status | code |
    param | operations | why``. The code cell is codes (comma-separated), optionally with
    the start of the message in quotes, or the quoted start alone (OpenAI's code-less
    errors); param and operations cells are comma-separated globs."""
    text = LIMITS_DOC.read_text() if text is None else text
    section = text.split(LIMITS_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    limits = []
    for line in rows:
        status, code, params, operations_cell = _cells(line)[:4]
        code, _, message = code.strip("`").partition('"')
        codes = tuple(name.strip() for name in code.split(",") if name.strip()) or (None,)
        limits.append(Limit(int(status), codes, message.rstrip('"') or None, _names(params), _names(operations_cell)))
    return limits


LIMITS = documented_limits()

_document = openai_document()
_components = _document["components"]
_error_validator = jsonschema.Draft202012Validator(
    {"$ref": "#/components/schemas/ErrorResponse", "components": _components}
)
# The request body schemas with their $refs resolved (as the server validates them).
_RESOLVED = OpenAPISpecification(prepare(_document))
BODY_SCHEMAS = {
    operation["operationId"]: operation["requestBody"]["content"]["application/json"]["schema"]
    for _, _, operation in operations({"paths": _RESOLVED["paths"]})
    if "application/json" in operation.get("requestBody", {}).get("content", {})
}
_UNRECOGNIZED = re.compile(r"^Unrecognized request arguments? supplied: (.*)$", re.DOTALL)


def _refused_fields(error: dict) -> list[str]:
    legacy = _UNRECOGNIZED.match(error["message"])
    if legacy:
        # Names as they are (a fuzzed one may start with a vertical tab: make fuzz, seed 2216542012).
        return legacy.group(1).split(", ")
    return [error["param"]] if error["param"] is not None else []


def _really_unknown(operation: str, error: dict, body) -> bool:
    """Whether the fields a 400 refuses as unknown are ones the operation's schema does not
    define (a refusal of a defined field is a bug the fuzzer must report)."""
    schema = BODY_SCHEMAS.get(operation)
    if schema is None or not isinstance(body, dict):
        return False
    refused = _refused_fields(error)
    unknown = set(unknown_fields(schema, body, operation))
    return bool(refused) and set(refused) <= unknown


def documented(operation: str, status: int, error: dict, body=None) -> Limit | None:
    """The documented limit that explains refusing a spec-valid request so, if any."""
    for limit in LIMITS:
        if limit.matches(operation, status, error):
            if limit.params == ("unknown field",) and not _really_unknown(operation, error, body):
                continue
            return limit
    return None


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
            error = body["error"]
            operation = case.operation.definition.raw["operationId"]
            if error["code"] == "unknown_url" and response.status_code == 404:
                # A "/" or a line break in an id cannot be routed (Starlette matches path
                # segments line by line); no id of ours has one, so 404 is the right answer.
                assert _unroutable_path_parameter(case), f"spec-valid request answered unknown_url: {error}"
                return None
            assert documented(operation, response.status_code, error, case.body) is not None, (
                f"spec-valid request refused with {response.status_code}, not a documented limit "
                f"(docs/CONFORMANCE.md): {error}"
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
        if chunk.get("type") == "keepalive":
            return  # after 15 s of silence (serving/keepalive.py); no schema in the document
        chunk = without_null_usage(chunk)
    if operation == "createCompletion":
        chunk = without_echo_nulls(chunk)
        # OpenAI streams `finish_reason: null` until a choice's last chunk; the document's
        # CreateCompletionResponse, written for whole answers, types it as a string only.
        chunk = {**chunk, "choices": [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]}
    _payload_validators[operation].validate(chunk)


def sse_payload_conformance(ctx, response, case):
    """Every event of a stream is ``data: <chunk>`` with a chunk valid against the spec's
    stream schema (or an OpenAI error), and the stream ends with ``data: [DONE]``."""
    assert not response.stream_cut_short, "the stream was still going when schemathesis stopped reading it"
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
    "create-realtime-client-secret": "RealtimeCreateClientSecretResponse",
}
_plain_validators = {operation: _payload_validator(name) for operation, name in PLAIN_SCHEMAS.items()}


def plain_schema_conformance(ctx, response, case):
    if response.status_code == 200:
        _plain_validators[case.operation.definition.raw["operationId"]].validate(response.json())
    return None


# An echoed prompt's first token has nothing before it to be scored by: OpenAI sends `null`
# first in `token_logprobs` and `top_logprobs` (as tests/e2e/test_local_sampling.py asserts),
# where the document types their items as a number and an object only. Such an answer is
# checked as the document's CreateCompletionResponse without those first nulls.
_completion_validator = _payload_validator("CreateCompletionResponse")


def without_echo_nulls(completion: dict) -> dict:
    choices = []
    for choice in completion.get("choices") or []:
        logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
        if isinstance(logprobs, dict):
            logprobs = {
                key: value[1:] if key in ("token_logprobs", "top_logprobs") and value and value[0] is None else value
                for key, value in logprobs.items()
            }
            choice = {**choice, "logprobs": logprobs}
        choices.append(choice)
    return {**completion, "choices": choices} if "choices" in completion else completion


def is_echoed_completion(case, response) -> bool:
    if case.operation.definition.raw.get("operationId") != "createCompletion" or response.status_code != 200:
        return False
    return isinstance(case.body, dict) and bool(case.body.get("echo")) and response.headers.get(
        "content-type", [""]
    )[0].startswith("application/json")


def echoed_completion_conformance(ctx, response, case):
    _completion_validator.validate(without_echo_nulls(response.json()))
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
