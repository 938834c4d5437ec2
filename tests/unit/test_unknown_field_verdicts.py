"""The unknown-field walk's verdicts on list items, kept across requests (spec/unknown_fields.py
``Verdicts``): an agent's earlier items are looked up, not walked again, and every rule still
holds for every request (issue #57 item 4)."""

from __future__ import annotations

import contextvars
import json
from pathlib import Path

import pytest

from llm_backend.auth import Principal
from llm_backend.http import context
from llm_backend.spec import unknown_fields as module
from llm_backend.spec.validation import check_body
from llm_backend.spec.unknown_fields import VERDICTS, Verdicts, unknown_fields
from tests.unit.test_unknown_fields import body_schema

SESSION = Path(__file__).resolve().parents[2] / "bench" / "data" / "codex_session"


def turn(number: int) -> dict:
    return json.loads((SESSION / f"turn-{number}.json").read_text())


def walked_items(monkeypatch, body: dict) -> list[dict]:
    """The items of ``body``'s input that the unknown-field walk visits from now on."""
    walked = []
    walk = module._unknown

    def counting(schemas, value, depth=0, tenant=""):
        if any(value is item for item in body["input"]):
            walked.append(value)
        return walk(schemas, value, depth, tenant)

    monkeypatch.setattr(module, "_unknown", counting)
    return walked


def test_an_agents_earlier_items_are_looked_up_not_walked_again(monkeypatch):
    schema = body_schema("/responses")
    earlier, later = turn(5), turn(6)
    assert unknown_fields(schema, earlier, "createResponse", "proj_a") == []
    walked = walked_items(monkeypatch, later)
    assert unknown_fields(schema, later, "createResponse", "proj_a") == []
    new = [item for item in later["input"] if item not in earlier["input"]]
    assert walked == new and 0 < len(new) < len(later["input"])


def test_another_tenants_items_are_walked_whole(monkeypatch):
    schema = body_schema("/responses")
    earlier, later = turn(4), turn(5)
    assert unknown_fields(schema, earlier, "createResponse", "proj_a") == []
    walked = walked_items(monkeypatch, later)
    assert unknown_fields(schema, later, "createResponse", "proj_b") == []
    assert walked == later["input"]


def test_an_items_unknown_field_is_found_again_at_its_new_index():
    schema = body_schema("/responses")
    item = {"type": "message", "role": "user", "content": "Hi", "colour": "red"}
    first = {"model": "m", "input": [item]}
    second = {"model": "m", "input": [{"type": "message", "role": "user", "content": "Hello"}, dict(item)]}
    assert unknown_fields(schema, first, "createResponse") == ["input[0].colour"]
    assert unknown_fields(schema, second, "createResponse") == ["input[1].colour"]


def test_a_verdict_belongs_to_the_schema_it_was_found_under():
    # tool_call_id is known on a chat's tool message, unknown on a Responses input message.
    message = {"role": "tool", "content": "Hi", "tool_call_id": "c1"}
    chat = {"model": "m", "messages": [message]}
    assert unknown_fields(body_schema("/chat/completions"), chat, "createChatCompletion") == []
    responses = {"model": "m", "input": [{**message, "role": "user"}]}
    assert unknown_fields(body_schema("/responses"), responses, "createResponse") == ["input[0].tool_call_id"]


def test_the_verdicts_kept_are_bounded_by_the_values_they_hold(monkeypatch):
    verdicts = Verdicts()
    monkeypatch.setattr(Verdicts, "NODES", 64)
    monkeypatch.setattr(module, "VERDICTS", verdicts)
    schema = body_schema("/responses")
    for n in range(40):  # each signature: the object and its two values (3)
        unknown_fields(schema, {"model": "m", "input": [{"role": "user", "content": f"question {n}"}]}, "createResponse")
    assert verdicts.nodes <= 64 and len(verdicts) == 64 // 3


@pytest.mark.parametrize("depth", [0, 3])
def test_a_verdict_is_given_for_its_own_schemas_and_tenant_only(depth):
    verdicts = Verdicts()
    schemas = [{"type": "object", "properties": {"a": {}}}]
    signature = (("dict", (("b", 1),)), 3)
    verdicts.put("proj_a", schemas, depth, signature, [("b",)])
    alike = [{"type": "object", "properties": {"a": {}}}]  # equal, another object (another id)
    assert verdicts.get("proj_a", alike, depth, signature) is None
    assert verdicts.get("proj_b", schemas, depth, signature) is None
    assert verdicts.get("proj_a", schemas, depth, signature) == [("b",)]


def test_the_process_wide_verdicts_are_the_ones_the_walk_keeps():
    before = len(VERDICTS)
    unknown_fields(body_schema("/responses"), {"model": "m", "input": [{"role": "user", "content": "a fresh shape", "x": 1}]},
                   "createResponse")
    assert len(VERDICTS) == before + 1


def checked_as(owner: str, body: dict) -> None:
    """``body`` through every lane's check, as ``owner``'s request would be."""
    def check() -> None:
        context.authenticated(Principal(owner))
        check_body(body_schema("/responses"), body, "createResponse")

    contextvars.copy_context().run(check)


def test_every_lanes_check_keeps_the_verdicts_of_the_callers_own_bodies(monkeypatch):
    earlier, later = turn(3), turn(4)
    new = [item for item in later["input"] if item not in earlier["input"]]
    checked_as("proj_c", earlier)
    walked = walked_items(monkeypatch, later)
    checked_as("proj_d", later)
    assert walked == later["input"]  # another project's: walked whole
    walked.clear()
    checked_as("proj_c", later)
    assert walked == new and len(new) < len(later["input"])
