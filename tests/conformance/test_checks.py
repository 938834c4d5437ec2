"""The status check itself (tests/conformance/checks.py): a spec-valid request refused by
us fails the fuzz unless the refusal is in docs/CONFORMANCE.md's table of documented
limits. It accepted any 400 with invalid_value, unsupported_parameter,
missing_required_parameter or unknown_parameter, so a regression refusing valid input
passed the fuzzer. The case and response are plain stand-ins for schemathesis' objects:
what the check reads of them, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from tests.conformance.checks import documented_limits, openai_status_conformance


@dataclass
class Response:
    status_code: int
    error: dict

    def json(self) -> dict:
        return {"error": {"type": "invalid_request_error", **self.error}}


@dataclass
class Case:
    operation_id: str
    body: dict = field(default_factory=dict)
    meta: None = None  # a positive (spec-valid) case
    path_parameters: dict = field(default_factory=dict)

    @property
    def operation(self):
        return SimpleNamespace(definition=SimpleNamespace(raw={"operationId": self.operation_id}))


CHAT = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}]}


def refused(operation: str, body: dict, code: str | None, param: str | None, message: str = "refused") -> None:
    error = {"message": message, "param": param, "code": code}
    openai_status_conformance(None, Response(400, error), Case(operation, body))


@pytest.mark.parametrize(
    ("code", "param"),
    [("invalid_value", "temperature"), ("unsupported_parameter", "top_p"), ("missing_required_parameter", "messages")],
)
def test_a_spec_valid_request_refused_without_a_documented_limit_fails_the_check(code, param):
    with pytest.raises(AssertionError, match="not a documented limit"):
        refused("createChatCompletion", CHAT, code, param)


def test_a_refusal_the_table_documents_passes():
    refused("createEmbedding", {"model": "smollm2", "input": "x", "dimensions": 7}, "invalid_value", "dimensions")
    refused("createChatCompletion", CHAT, "unsupported_parameter", "messages[0].content[1].type")
    # A realtime session's mcp tool without its server_url, checked as a response's is (a fuzz
    # run found the refusal answered but not in the table).
    mcp = {"session": {"type": "realtime", "tools": [{"type": "mcp", "server_label": "docs"}]}}
    refused("create-realtime-client-secret", mcp, "missing_required_parameter", "session.tools[0].server_url")
    with pytest.raises(AssertionError, match="not a documented limit"):
        refused("create-realtime-client-secret", mcp, "invalid_value", "session.model")


def test_an_unknown_field_refusal_passes_only_for_a_field_the_schema_does_not_define():
    refused("createResponse", {"model": "smollm2", "zzz": 1}, "unknown_parameter", "zzz", "Unknown parameter: 'zzz'.")
    with pytest.raises(AssertionError):
        refused("createResponse", {"model": "smollm2", "store": True}, "unknown_parameter", "store", "Unknown parameter: 'store'.")
    refused("createChatCompletion", {**CHAT, "zzz": 1}, None, None, "Unrecognized request argument supplied: zzz")
    two = {"model": "smollm2", "prompt": "Hi", "R\x84": 1, "\x0bE ": 2}
    refused("createCompletion", two, None, None, "Unrecognized request arguments supplied: R\x84, \x0bE ")
    with pytest.raises(AssertionError):
        refused("createChatCompletion", {**CHAT, "n": 1}, None, None, "Unrecognized request argument supplied: n")


def test_the_table_reads_codes_messages_and_globs():
    [limit] = documented_limits(
        "## Documented limits\n\n| status | code | param | operations | why |\n| --- | --- | --- | --- | --- |\n"
        '| 400 | invalid_value, invalid_type "Invalid \'x\'" | `items[*].type`, - | create*, `listFiles` | why |\n'
    )
    assert (limit.status, limit.codes, limit.message) == (400, ("invalid_value", "invalid_type"), "Invalid 'x'")
    error = {"code": "invalid_type", "param": "items[3].type", "message": "Invalid 'x': no"}
    assert limit.matches("createResponse", 400, error) and limit.matches("listFiles", 400, {**error, "param": None})
    assert not limit.matches("createResponse", 400, {**error, "param": "items3.type"})
    assert not limit.matches("deleteFile", 400, error)


def test_counting_input_tokens_may_refuse_a_tool_choice_naming_no_given_tool():
    """Found by the fuzz (seed 2582331553): /responses/input_tokens checks tools as
    createResponse does."""
    body = {"model": "smollm2", "input": [], "tool_choice": {"type": "file_search"}, "tools": [{"type": "local_shell"}]}
    refused("Getinputtokencounts", body, "invalid_value", "tool_choice")
