"""Anthropic's Messages API (``openapi/anthropic.yaml``) served by the OpenAI document's
Connexion API, beside its operations (``Family.joined``); and the route of a Message Batch's
lines (``batch_routes``).

Both documents' paths live under ``/v1``, and ``GET /v1/models`` is in both. Connexion keeps
one API per base path in its security and validation layers (a second API at ``/v1`` would
replace the first there), and routes a ``/v1`` path only by the ``/v1`` API (a root API
never sees one). So the Anthropic document is joined to the OpenAI one in memory, as
Connexion is given it (the file stays as written): its operations, its schemas and security
schemes under names of their own (``Anthropic.``), every operation's security its
document's (an ``x-api-key`` or a Bearer key). Its operations then take every lane OpenAI's
take: the security, the fast lane, the body validation, the controllers (``controller.py``,
named by the family's registration).
"""

from __future__ import annotations

from typing import Any

from llm_backend.spec.adapter import HTTP_METHODS, operations, served_function
from llm_backend.spec.batch_endpoints import BatchEndpoint, endpoint
from llm_backend.storage.batches import MESSAGE_BATCHES

PREFIX = "Anthropic."
BOTH_SHAPES = frozenset({"listModels", "retrieveModel"})
REF = "#/components/"
MESSAGES_CREATE = "messagesCreate"


def _renamed(value: Any) -> Any:
    """``value`` with every ``$ref`` to a component pointing at its prefixed name."""
    if isinstance(value, dict):
        return {
            key: (_ref(item) if key == "$ref" and isinstance(item, str) else _renamed(item)) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_renamed(item) for item in value]
    return value


def _ref(ref: str) -> str:
    if not ref.startswith(REF):
        return ref
    kind, _, name = ref[len(REF):].partition("/")
    return f"{REF}{kind}/{PREFIX}{name}"


def _server_path(document: dict) -> str:
    return (document.get("servers") or [{"url": ""}])[0]["url"].rstrip("/")


def joined(openai: dict, anthropic: dict) -> dict:
    """The (prepared) OpenAI document with the Anthropic document's operations added; a path
    both have (``/models``) stays OpenAI's (its controller answers both shapes)."""
    prefix = _server_path(anthropic)[len(_server_path(openai)):]  # "" when both are at /v1
    security = [{PREFIX + name: scopes for name, scopes in requirement.items()} for requirement in anthropic.get("security", [])]
    paths = dict(openai["paths"])
    taken = {operation["operationId"] for item in paths.values() for method, operation in item.items() if method in HTTP_METHODS}
    for path, item in anthropic.get("paths", {}).items():
        if prefix + path in paths:
            continue
        item = _renamed(item)
        for method in HTTP_METHODS:
            if method in item:
                # One operationId, one controller and one forwarding rule: never OpenAI's
                # (its Assistants' createMessage is one; ours are messagesCreate...).
                assert item[method]["operationId"] not in taken, item[method]["operationId"]
                item[method] = {"security": security, **item[method]}
        paths[prefix + path] = item
    # OpenAI's operations that answer Anthropic's shape too (``controllers/models.py``) let
    # Anthropic's clients in with Anthropic's key header as well (older SDKs, Claude Code,
    # an Anthropic upstream's model list: ``x-api-key``).
    for path, item in paths.items():
        for method, operation in item.items():
            if method in HTTP_METHODS and operation.get("operationId") in BOTH_SHAPES:
                item = paths[path] = {**item, method: {**operation, "security": [*operation.get("security", openai.get("security", [])), *security]}}
    components = {kind: dict(entries) for kind, entries in openai.get("components", {}).items()}
    for kind, entries in anthropic.get("components", {}).items():
        target = components.setdefault(kind, {})
        for name, entry in entries.items():
            target[PREFIX + name] = _renamed(entry)
    return {**openai, "paths": paths, "components": components}


def batch_routes(specification: Any) -> dict[str, BatchEndpoint]:
    """``/v1/messages`` -> messagesCreate's ``BatchEndpoint`` when it is served: the route of a
    Message Batch's lines, its kind's alone (createBatch's enum has no ``/v1/messages``: an
    OpenAI batch naming it stays refused as OpenAI refuses it). Its ``beta`` query and header
    parameters are none of a line's, so the fast lane's table
    (``adapter.json_body_operations``) does not hold it. ``specification`` is Connexion's,
    with its ``$ref``s resolved."""
    for path, _, operation in operations({"paths": specification["paths"]}):
        if operation.get("operationId") != MESSAGES_CREATE or specification.base_path + path != MESSAGE_BATCHES:
            continue
        controller = served_function(operation, path)
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if controller is not None and schema is not None:
            return {MESSAGE_BATCHES: endpoint(MESSAGES_CREATE, controller, schema)}
    return {}
