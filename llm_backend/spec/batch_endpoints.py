"""The endpoints a batch may name, as served here: ``createBatch``'s ``endpoint`` enum (the
document's) that has a served JSON-body operation, each with what a line of it needs - the
controller (the fast lane's, with its forwarding rules), the check of its body (the body
validator's schema and unknown-field rule) and the parameters its body requires.

Anthropic's Message Batches (``serving/messages/batches.py``) are batches whose lines are
``POST /v1/messages`` requests: that route is their kind's alone (``message_batch_endpoints``),
never one an OpenAI batch may name - createBatch's enum has no ``/v1/messages``, and an
OpenAI batch naming it stays refused as OpenAI refuses it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..storage.batches import MESSAGE_BATCHES
from .adapter import operations, served_function
from .validation import check_body

MESSAGES_CREATE = "messagesCreate"


@dataclass(frozen=True)
class BatchEndpoint:
    operation_id: str
    controller: Callable
    check: Callable[[Any], None]  # raises the 400 the body validator would answer
    required: tuple[str, ...]


def _endpoint(operation_id: str, controller: Callable, schema: dict) -> BatchEndpoint:
    def check(body: Any) -> None:
        check_body(schema, body, operation_id)

    return BatchEndpoint(operation_id, controller, check, tuple(_required(schema)))


def _required(schema: dict) -> list[str]:
    """The properties a body schema requires, through ``allOf``."""
    names = list(schema.get("required") or ())
    for part in schema.get("allOf") or ():
        if isinstance(part, dict):
            names += [name for name in _required(part) if name not in names]
    return names


def batch_endpoints(body_operations: dict[tuple[str, str], tuple[str, Callable, dict]], base_path: str) -> dict[str, BatchEndpoint]:
    """``/v1/chat/completions`` -> its ``BatchEndpoint``, for every endpoint a batch may
    name that is served here (``body_operations``: ``adapter.json_body_operations``)."""
    create = body_operations.get(("POST", base_path + "/batches"))
    if create is None:
        return {}
    endpoints = {}
    for endpoint in create[2]["properties"]["endpoint"]["enum"]:
        route = body_operations.get(("POST", base_path + endpoint.removeprefix("/v1")))
        if route is not None:
            endpoints[endpoint] = _endpoint(*route)
    return endpoints


def message_batch_endpoints(specification: Any) -> dict[str, BatchEndpoint]:
    """``/v1/messages`` -> messagesCreate's ``BatchEndpoint`` when it is served: the route of a
    Message Batch's lines (its ``beta`` query and header parameters are none of a line's, so
    the fast lane's table, ``adapter.json_body_operations``, does not hold it). ``specification``
    is Connexion's, with its ``$ref``s resolved."""
    for path, _, operation in operations({"paths": specification["paths"]}):
        if operation.get("operationId") != MESSAGES_CREATE or specification.base_path + path != MESSAGE_BATCHES:
            continue
        controller = served_function(operation, path)
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if controller is not None and schema is not None:
            return {MESSAGE_BATCHES: _endpoint(MESSAGES_CREATE, controller, schema)}
    return {}
