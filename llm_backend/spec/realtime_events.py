"""The Realtime API's client events, checked by the document's own schemas.

``RealtimeClientEvent`` is an ``anyOf`` of one schema per ``type``; an event is checked
against the schema of its ``type`` (an unknown type is refused naming ``type``), with the
few components those schemas reference kept, not the whole document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import errors
from ..json.types import Json
from . import leniency, validation

CheckEvent = Callable[[Any], Json]


def _referenced(schemas: dict, roots: list[str]) -> dict:
    kept: dict[str, Any] = {}
    pending: list[Any] = [schemas[name] for name in roots]
    kept.update({name: schemas[name] for name in roots})
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in kept:
                    kept[name] = schemas[name]
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return kept


def client_event_checker(document: Json) -> CheckEvent:
    """A checker of Realtime client events: the event, or the 400 its schema gives."""
    schemas = document["components"]["schemas"]
    names = [option["$ref"].rsplit("/", 1)[1] for option in schemas["RealtimeClientEvent"]["anyOf"]]
    by_type = {schemas[name]["properties"]["type"]["enum"][0]: name for name in names}
    components = {"schemas": _referenced(schemas, names)}
    leniency.relax(components["schemas"], leniency.REALTIME)  # what OpenAI accepts beyond the document
    checks = {kind: {"$ref": f"#/components/schemas/{name}", "components": components} for kind, name in by_type.items()}

    def check(event: Any) -> Json:
        if not isinstance(event, dict):
            raise errors.invalid_client_event()
        kind = event.get("type")
        schema = checks.get(kind) if isinstance(kind, str) else None
        if schema is None:
            choices = ", ".join(f"'{known}'" for known in sorted(checks))
            raise errors.bad_request(f"Invalid value: '{str(kind)[:100]}'. Supported values are: {choices}.", "type", "invalid_value")
        validation.check_body(schema, event)
        return event

    return check
