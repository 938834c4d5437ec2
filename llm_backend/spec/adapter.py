"""Adapt the pristine OpenAI document (OpenAPI 3.1) to Connexion 3 (built for 3.0), in memory.

What Connexion needs and the vendored file is never edited for:
- its spec validator accepts only 3.0.x with Draft 4: skipped (the document is upstream's);
- request bodies are validated with JSON Schema 2020-12, the dialect of OpenAPI 3.1;
- every operationId is routed: to ``llm_backend.controllers.<tag>.<operation_id>`` when that
  function exists; else it is forwarded verbatim to the default upstream API when one is
  configured (``http/forwarding.py``), or a fallback answers 404 as OpenAI does for a URL
  it does not serve (operations we do not serve are not validated either: there is nothing
  of ours to protect);
- request validation (``validation.py``) speaks JSON Schema 2020-12 and OpenAI's errors;
- the organisation's operations (``AdminApiKeyAuth``) need an admin key (``ADMIN_SCHEMES``).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from connexion import request
from connexion.lifecycle import ConnexionRequest
from connexion.resolver import Resolution, Resolver
from connexion.spec import OpenAPISpecification
from connexion.validators import FormDataValidator

from ..errors import invalid_body, not_served
from ..http.forwarding import SHARED_STATE_TAGS, found_here_or_upstream, routed_by_model
from . import leniency
from .forms import OpenAIMultiPartValidator
from .parameters import OpenAPI31ParameterValidator, ParameterParser
from .validation import CHECKED_BODY, OpenAPI31BodyValidator

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head")
CONTROLLERS = "llm_backend.controllers"

# The vendored document is OpenAPI 3.1; Connexion's 3.0/Draft-4 spec validator cannot read it.
OpenAPISpecification._validate_spec = classmethod(lambda cls, spec: None)

async def _checked_json(self: ConnexionRequest):
    """The body the body validator parsed and checked (``validation.CHECKED_BODY``), not
    the bytes parsed again on the event loop (issue #39: 0.25 s of it for the worst 8 MiB).
    Without one the request has no JSON body for its operation (a GET sent with one: never
    read, never parsed)."""
    return self.scope.get("extensions", {}).get(CHECKED_BODY)


ConnexionRequest.json = _checked_json


def snake_case(name: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z]+", "_", name)
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().strip("_")


def operations(document: dict) -> list[tuple[str, str, dict]]:
    """(path, method, operation) for every operation of a document."""
    return [
        (path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def first_tag(operation: dict) -> str:
    """The tag an operation belongs to (its controller module); ``untagged`` when none."""
    return (operation.get("tags") or ["untagged"])[0]


def controller_name(operation: dict) -> str:
    # Connexion's own key names a module outside controllers/ (a family's controller: families/family.py).
    module = operation.get("x-openapi-router-controller") or f"{CONTROLLERS}.{snake_case(first_tag(operation))}"
    return f"{module}.{snake_case(operation['operationId'])}"


@functools.cache
def _controller_module(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None  # no controller module for this tag (yet)
        raise


def find_controller(name: str) -> Callable | None:
    module_name, _, function_name = name.rpartition(".")
    return getattr(_controller_module(module_name), function_name, None)


def is_served(operation: dict) -> bool:
    return find_controller(controller_name(operation)) is not None


def _json_object_body(controller: Callable) -> Callable:
    """Connexion validates a body by its declared content type: one sent without
    ``application/json`` reaches the controller unvalidated (bytes). Refuse it instead."""

    @functools.wraps(controller)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("body") is not None and not isinstance(kwargs["body"], dict):
            raise invalid_body()
        return await controller(*args, **kwargs)

    return checked


def served_function(operation: dict, path: str) -> Callable | None:
    """What answers an operation we serve: its controller, given only JSON objects as
    bodies, behind the forwarding rules for upstream models and objects
    (``http/forwarding.py``)."""
    controller = find_controller(controller_name(operation))
    if controller is None:
        return None
    if "{" in path and first_tag(operation) in SHARED_STATE_TAGS:
        controller = found_here_or_upstream(controller)
    if "application/json" not in operation.get("requestBody", {}).get("content", {}):
        return controller
    return routed_by_model(operation["operationId"], _json_object_body(controller))


def operation_ids_of(document: dict, tags: frozenset[str]) -> frozenset[str]:
    """The operationIds whose first tag is one of ``tags``."""
    return frozenset(op["operationId"] for _, _, op in operations(document) if first_tag(op) in tags)


Variants = list[tuple[dict[str, str], str]]


def query_variants(document: dict) -> dict[str, Variants]:
    """Operations told apart only by a query string (``/responses?beta=true``) share the
    route of the plain path; map the plain operation to its variants and their queries."""
    plain = {(path, method): op["operationId"] for path, method, op in operations(document) if "?" not in path}
    variants: dict[str, Variants] = {}
    for path, method, operation in operations(document):
        if "?" in path:
            base, _, query = path.partition("?")
            if (base, method) in plain:
                variants.setdefault(plain[(base, method)], []).append((dict(parse_qsl(query)), operation["operationId"]))
    return variants


def _fallback(operation_id: str, variants: Variants) -> Callable:
    async def unserved(*args: Any, **kwargs: Any) -> None:
        scope = request.scope
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        served_id = next((variant for conditions, variant in variants if conditions.items() <= query.items()), operation_id)
        raise not_served(served_id, scope["method"], scope["path"])

    unserved.__name__ = snake_case(operation_id)
    return unserved


def json_body_operations(specification: Any) -> dict[tuple[str, str], tuple[str, Callable, dict]]:
    """(method, path) -> (operationId, controller, body schema) for every served operation
    whose whole input is a JSON body (no path or query parameters): the ones the fast lane
    may take. ``specification`` is Connexion's, with its ``$ref``s resolved."""
    routes = {}
    for path, method, operation in operations({"paths": specification["paths"]}):
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        controller = served_function(operation, path)
        plain = "{" not in path and "?" not in path and not operation.get("parameters")
        if schema is not None and controller is not None and plain and not specification["paths"][path].get("parameters"):
            routes[(method.upper(), specification.base_path + path)] = (operation["operationId"], controller, schema)
    return routes


def unserved_operation_ids(document: dict) -> frozenset[str]:
    """The operationIds of ``document`` that no controller serves."""
    return frozenset(operation["operationId"] for _, _, operation in operations(document) if not is_served(operation))


class ControllerResolver(Resolver):
    """operationId -> controller function by the tag convention, else the not-served fallback."""

    def __init__(self, document: dict | None = None) -> None:
        super().__init__()
        self.variants = query_variants(document or {})

    def resolve(self, operation) -> Resolution:
        operation_id = operation.operation_id
        function = served_function(operation._operation, operation.path) or _fallback(operation_id, self.variants.get(operation_id, []))
        return Resolution(function, operation_id)


# What Connexion needs of an operation we do not serve: its name, tag and security.
_UNSERVED_KEEP = ("operationId", "tags", "security")


def prepare(document: dict) -> dict:
    """The document as Connexion should see it.

    Unserved operations keep only what routes them (there is nothing of ours to validate),
    and ``components`` only what the served operations' requests refer to. Connexion
    deep-copies and resolves the whole document at start-up; trimmed, that takes a
    fraction of the time.
    """
    # Webhooks and other top-level parts describe nothing Connexion routes.
    prepared = {key: document[key] for key in ("openapi", "info", "servers", "security", "tags") if key in document}
    prepared["paths"] = paths = {}
    for path, item in document.get("paths", {}).items():
        item = dict(item)
        served_any = False
        for method in HTTP_METHODS:
            if method not in item:
                continue
            if is_served(item[method]):
                served_any = True
            else:
                item[method] = {k: v for k, v in item[method].items() if k in _UNSERVED_KEEP}
        if not served_any:
            item.pop("parameters", None)
        paths[path] = item
    prepared["components"] = _referenced_components(document.get("components", {}), paths)
    # What OpenAI's API accepts beyond the document, for every lane that validates with it.
    leniency.relax(prepared["components"].get("schemas", {}))
    return prepared


# The document's scheme for the organisation's operations (admin keys, projects, users,
# audit logs, usage...): marked as our admin scheme, so only an admin key calls them.
ADMIN_SCHEMES = ("AdminApiKeyAuth",)


def admin_operation_ids(document: dict) -> frozenset[str]:
    """The operationIds an admin key is needed for (``ADMIN_SCHEMES``)."""
    default = document.get("security") or []
    return frozenset(
        operation["operationId"]
        for _, _, operation in operations(document)
        if any(name in requirement for requirement in operation.get("security", default) for name in ADMIN_SCHEMES)
    )


def _security_schemes(components: dict) -> dict:
    schemes = dict(components.get("securitySchemes", {}))
    for name in ADMIN_SCHEMES:
        if name in schemes:
            schemes[name] = {**schemes[name], "x-admin": True}
    return schemes


def _referenced_components(components: dict, paths: dict) -> dict:
    kept: dict[str, dict] = {"securitySchemes": _security_schemes(components)}
    pending = [paths]
    seen: set[str] = set()
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/") and ref not in seen:
                seen.add(ref)
                section, name = ref.split("/")[2:4]
                target = components[section][name]
                kept.setdefault(section, {})[name] = target
                pending.append(target)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return kept


# What add_api is given: validators and parser for the 3.1 document.
VALIDATOR_MAP = {
    "parameter": OpenAPI31ParameterValidator,
    "body": {
        "application/json": OpenAPI31BodyValidator,
        "application/x-www-form-urlencoded": FormDataValidator,
        "multipart/form-data": OpenAIMultiPartValidator,
    },
}
URI_PARSER = ParameterParser
