"""What OpenAI's API accepts beyond its document: the one table, and the two things done with it.

The document marks some fields required that the real API fills in when a request leaves
them out, and clients rely on that: the Open Responses compliance suite, the Vercel AI SDK
and hand-written clients send function tools without ``strict``, assistant history as
``output_text`` parts without ``annotations``/``logprobs`` and without the message's
``type``/``id``/``status``, images without ``detail``. Refused here (400 ``invalid_value``), those
requests failed against a service that claims OpenAI's API.

For each entry: ``relax`` drops the field from its schema's ``required`` in the document
Connexion serves (``spec/adapter.py``), so every lane that validates with that document
(the fast lane, Connexion, the WebSocket ``response.create``, batch lines) accepts the
request alike; ``fill`` gives a body served by a local model the value OpenAI uses, so
what is echoed, stored and listed is what OpenAI's would be. A body for an upstream model
is relayed as the client sent it: the upstream applies its own defaults. Nothing else is
relaxed: a wrong type, an unknown field, a missing field not listed here is still refused.

``ACCEPTED`` lists the fields OpenAI accepts that the document does not define at all
(Codex sends ``client_metadata`` on every turn, and with OpenAI's own provider
``internal_chat_message_metadata_passthrough`` on the items of its history): ``relax`` adds
each to its schema's properties (a union's: each member's) with the bounds it is checked
against, so every lane knows it alike; a local model's answer does not depend on it (neither
stored nor echoed: an item's is dropped by ``fill``), an upstream's gets it as sent.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..json.types import Json



def _new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Lenient:
    """``field`` of the document's ``schema`` may be left out; OpenAI then uses ``default``
    (a callable: a fresh value each time). ``applies`` tells an object of the schema from
    its siblings in the same place (by their ``type``)."""

    schema: str
    field: str
    default: Any
    applies: Callable[[Json], bool]
    evidence: str

    def value(self) -> Any:
        return self.default() if callable(self.default) else copy.deepcopy(self.default)


def _of_type(kind: str) -> Callable[[Json], bool]:
    return lambda node: node.get("type") == kind


def _assistant_history(node: Json) -> bool:
    # An assistant message given with a list of parts (``type`` may be left out too).
    return node.get("role") == "assistant" and node.get("type", "message") == "message" and isinstance(node.get("content"), list)


TABLE: tuple[Lenient, ...] = (
    Lenient(
        "FunctionTool", "strict", True,
        # A Responses function tool has its name at the top (a chat tool has a `function`).
        lambda node: node.get("type") == "function" and "name" in node and "function" not in node,
        "OpenAI's function calling guide: an omitted `strict` puts a Responses function in strict mode",
    ),
    Lenient(
        "OutputTextContent", "annotations", [], _of_type("output_text"),
        "assistant history from clients (Vercel AI SDK, Open Responses suite) is accepted without it",
    ),
    Lenient(
        "OutputTextContent", "logprobs", [], _of_type("output_text"),
        "the same; OpenAI's own SDK types mark it optional in a request",
    ),
    Lenient(
        "OutputMessage", "type", "message", _assistant_history,
        "the Vercel AI SDK sends assistant history as {role, content} only",
    ),
    Lenient(
        "OutputMessage", "id", _new_message_id, _assistant_history,
        "assistant history without ids is accepted; the item gets a new id",
    ),
    Lenient(
        "OutputMessage", "status", "completed", _assistant_history,
        "assistant history is accepted without a status",
    ),
    Lenient(
        "InputImageContent", "detail", "auto", _of_type("input_image"),
        "the document itself: 'Defaults to `auto`'",
    ),
    Lenient(
        "MCPApprovalResponse", "request_id", None, _of_type("mcp_approval_response"),
        "the document requires a `request_id` it never defines (`approval_request_id` is the id); OpenAI's SDK "
        "types and the Agents SDK send none",
    ),
)

@dataclass(frozen=True)
class Accepted:
    """``field`` of ``schema`` (of each member of a union: ``InputItem``), absent from the
    document, accepted as ``value`` describes; ``dropped`` from a body served here, where the
    objects that hold it are stored and listed back (a Response's input items)."""

    schema: str
    field: str
    value: Json
    evidence: str
    dropped: bool = False


ACCEPTED: tuple[Accepted, ...] = (
    Accepted(
        "CreateResponse", "client_metadata",
        {
            "type": "object",
            "description": "The client's own metadata (strings); accepted, neither stored nor echoed.",
            "maxProperties": 64,
            "propertyNames": {"maxLength": 256},
            "additionalProperties": {"type": "string", "maxLength": 16384},
        },
        "Codex CLI sends it on every turn (openai/codex PR #27122: installation id, turn state, "
        "traceparent); OpenAI's API accepts it",
    ),
    Accepted(
        "InputItem", "internal_chat_message_metadata_passthrough",
        {
            "type": "object",
            "description": "The client's own metadata of an item; accepted, neither stored nor echoed.",
            "maxProperties": 64,
            "propertyNames": {"maxLength": 256},
        },
        "Codex CLI with OpenAI's own provider (`openai_base_url`, its Responses WebSocket mode; 0.171) "
        "sends it on the items of its history (`content_item_kinds`, `turn_id`, `create_time`); "
        "OpenAI's API accepts it",
        dropped=True,
    ),
)

# The same for the Realtime API's client events (``spec/realtime_events.py``: checked by their
# own schemas, not through the document Connexion serves); the session fills the value in.
REALTIME: tuple[Lenient, ...] = (
    Lenient(
        "RealtimeMCPApprovalResponse", "id", lambda: f"mcpa_{uuid.uuid4().hex[:20]}", _of_type("mcp_approval_response"),
        "the Agents SDK (JS) answers an approval request with `conversation.item.create` of an "
        "`mcp_approval_response` without an id; the item gets a new `mcpa_` id",
    ),
)

# Operations whose requests can hold one of the objects above (the rest are never walked).
OPERATIONS = frozenset(
    {"createResponse", "Compactconversation", "Getinputtokencounts", "createConversation", "createConversationItems"}
)
# Parts of a request that are the client's own data, never API objects to fill in.
_OPAQUE = frozenset({"parameters", "schema", "metadata", "arguments", "output_schema", "client_metadata"})
_DROPPED = frozenset(extra.field for extra in ACCEPTED if extra.dropped)


def _members(schemas: Json, name: str, through: frozenset[str] = frozenset()) -> list[str]:
    """``name``, or the object schemas its ``anyOf``/``oneOf`` reach (a union of items),
    each union walked once on a path (``through``)."""
    branches = [*schemas.get(name, {}).get("anyOf", ()), *schemas.get(name, {}).get("oneOf", ())]
    refs = [branch["$ref"].rsplit("/", 1)[1] for branch in branches if "$ref" in branch]
    if not refs:
        return [name]
    return [member for ref in refs if ref not in through for member in _members(schemas, ref, through | {name})]


def relax(schemas: Json, table: tuple[Lenient, ...] = TABLE) -> None:
    """Drop each entry's field from its schema's ``required``, in ``schemas`` (the
    ``components.schemas`` of the document Connexion serves, or of the Realtime client
    events with ``REALTIME``: the vendored file is untouched; each relaxed schema is a copy)."""
    for entry in table:
        schema = schemas.get(entry.schema)
        if schema is None:
            continue  # not referred to by any served operation
        required = [name for name in schema.get("required", []) if name != entry.field]
        properties = schema.get("properties", {})
        if entry.field not in properties:
            # Required but never defined (MCPApprovalResponse.request_id): optional, of any
            # value as the document leaves it (schemathesis sent `{}`, refused when this
            # said string), still a known field for a client that sends it as written there.
            properties = {**properties, entry.field: {}}
        schemas[entry.schema] = {**schema, "required": required, "properties": properties}
    for extra in ACCEPTED if table is TABLE else ():
        for name in dict.fromkeys(_members(schemas, extra.schema)):
            schema = schemas.get(name)
            if schema is not None:
                schemas[name] = {**schema, "properties": {**schema.get("properties", {}), extra.field: extra.value}}


def fill(body: Any, operation_id: str | None) -> bool:
    """Set OpenAI's default wherever ``body`` left out a field of the table, and drop the
    accepted fields a body served here does not keep; whether it changed. For a body served
    here (``spec/validation.local_problem``)."""
    if operation_id not in OPERATIONS:
        return False
    filled = False
    pending = [body]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            for entry in TABLE:
                if entry.field not in node and entry.applies(node):
                    node[entry.field] = entry.value()
                    filled = True
            for field in _DROPPED & node.keys():
                del node[field]
                filled = True
            pending.extend(value for key, value in node.items() if key not in _OPAQUE)
    return filled


def accepted_rows() -> list[tuple[str, str]]:
    """(schema.field, evidence) of each field accepted beyond the document (docs/CONFORMANCE.md)."""
    return [(f"{extra.schema}.{extra.field}", extra.evidence) for extra in ACCEPTED]


def rows() -> list[tuple[str, str, str]]:
    """(schema.field, default, evidence) of each entry, as docs/CONFORMANCE.md lists them."""
    return [
        (f"{entry.schema}.{entry.field}", "a new id" if callable(entry.default) else repr(entry.default), entry.evidence)
        for entry in (*TABLE, *REALTIME)
    ]
