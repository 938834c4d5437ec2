"""The endpoints a batch may name, as served here: ``createBatch``'s ``endpoint`` enum (the
document's) that has a served JSON-body operation, each with what a line of it needs - the
controller (the fast lane's, with its forwarding rules), the check of its body (the body
validator's schema and unknown-field rule) and the parameters its body requires.

A family's own kind of batch (Anthropic's Message Batches: lines that are ``POST
/v1/messages`` requests) has routes of its own, never one an OpenAI batch may name
(``Family.batch_routes``), each an ``endpoint`` alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .validation import check_body


@dataclass(frozen=True)
class BatchEndpoint:
    operation_id: str
    controller: Callable
    check: Callable[[Any], None]  # raises the 400 the body validator would answer
    required: tuple[str, ...]


def endpoint(operation_id: str, controller: Callable, schema: dict) -> BatchEndpoint:
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
    for name in create[2]["properties"]["endpoint"]["enum"]:
        route = body_operations.get(("POST", base_path + name.removeprefix("/v1")))
        if route is not None:
            endpoints[name] = endpoint(*route)
    return endpoints

