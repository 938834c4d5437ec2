"""Adapt the pristine OpenAI document (OpenAPI 3.1) to Connexion 3 (built for 3.0), in memory.

What Connexion needs and the vendored file is never edited for:
- its spec validator accepts only 3.0.x with Draft 4: skipped (the document is upstream's);
- request bodies are validated with JSON Schema 2020-12, the dialect of OpenAPI 3.1;
- every operationId is routed: to ``llm_backend.controllers.<tag>.<operation_id>`` when that
  function exists; else it is forwarded verbatim to the default upstream API when one is
  configured (``UnservedOperations``), or a fallback answers 501 (operations we do not serve
  are not validated either: there is nothing of ours to protect);
- validation errors become OpenAI errors naming the offending parameter.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from connexion import request
from connexion.resolver import Resolution, Resolver
from connexion.spec import OpenAPISpecification
from connexion.validators import (
    FormDataValidator,
    JSONRequestBodyValidator,
    MultiPartFormDataValidator,
    ParameterValidator,
)
import jsonschema_rs
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import OpenAIError, bad_request, not_implemented

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head")
CONTROLLERS = "llm_backend.controllers"

# The vendored document is OpenAPI 3.1; Connexion's 3.0/Draft-4 spec validator cannot read it.
OpenAPISpecification._validate_spec = classmethod(lambda cls, spec: None)


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


def controller_name(operation: dict) -> str:
    tags = operation.get("tags") or ["untagged"]
    return f"{CONTROLLERS}.{snake_case(tags[0])}.{snake_case(operation['operationId'])}"


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
        query = dict(parse_qsl(request.scope.get("query_string", b"").decode()))
        for conditions, variant_id in variants:
            if conditions.items() <= query.items():
                raise not_implemented(variant_id)
        raise not_implemented(operation_id)

    unserved.__name__ = snake_case(operation_id)
    return unserved


def unserved_operation_ids(document: dict) -> frozenset[str]:
    """The operationIds of ``document`` that no controller serves."""
    return frozenset(operation["operationId"] for _, _, operation in operations(document) if not is_served(operation))


class UnservedOperations:
    """Connexion middleware (after routing and security, before validation): an operation
    we do not serve goes to ``forward``, the default upstream, with its request untouched -
    the body is not even read, so a multipart upload passes as the bytes the client sent.
    Without an upstream this middleware is not installed and ``_fallback`` answers 501."""

    def __init__(self, app: ASGIApp, unserved: frozenset[str], forward: ASGIApp) -> None:
        self.app = app
        self.unserved = unserved
        self.forward = forward

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routing = scope.get("extensions", {}).get("connexion_routing", {})
            if routing.get("operation_id") in self.unserved:
                await self.forward(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ControllerResolver(Resolver):
    """operationId -> controller function by the tag convention, else the 501 fallback."""

    def __init__(self, document: dict | None = None) -> None:
        super().__init__()
        self.variants = query_variants(document or {})

    def resolve(self, operation) -> Resolution:
        operation_id = operation.operation_id
        raw = {"operationId": operation_id, "tags": operation._operation.get("tags")}
        function = find_controller(controller_name(raw)) or _fallback(operation_id, self.variants.get(operation_id, []))
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
    return prepared


def _referenced_components(components: dict, paths: dict) -> dict:
    kept: dict[str, dict] = {"securitySchemes": components.get("securitySchemes", {})}
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


# --- validation ---------------------------------------------------------------------------


def _param_path(error: ValidationError) -> str | None:
    path = list(error.absolute_path)
    if error.validator == "required":
        match = re.match(r"'([^']+)' is a required property", error.message)
        if match:
            path.append(match.group(1))
    if not path:
        return None
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def _as_openai_error(error: ValidationError) -> OpenAIError:
    param = _param_path(error)
    if error.validator == "required" and param:
        return bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if error.validator == "type":
        return bad_request(f"Invalid type for '{param}': {error.message}.", param, "invalid_type")
    if error.validator == "additionalProperties":
        return bad_request(f"Unrecognized request argument supplied: {error.message}", param, "unknown_parameter")
    where = f"'{param}'" if param else "the request body"
    return bad_request(f"Invalid value for {where}: {error.message}.", param, "invalid_value")


def _allow_nullable(keyword: str):
    check = Draft202012Validator.VALIDATORS[keyword]

    def nullable_check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        yield from check(validator, value, instance, schema)

    return nullable_check


# The document is 3.1 but still says `nullable: true` (the 3.0 way) in ~110 places; OpenAI
# accepts null there, and so must we.
RequestSchemaValidator = extend(
    Draft202012Validator,
    {"type": _allow_nullable("type"), "enum": _allow_nullable("enum")},
)


def nullable_as_type(node: Any) -> Any:
    """A copy of a schema with 3.0's ``nullable: true`` spelled the 2020-12 way."""
    if isinstance(node, list):
        return [nullable_as_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    # 2019-09's recursive keywords (CompoundFilter: nested filters) are no 2020-12 keywords:
    # the Python validator ignores them, and jsonschema-rs refuses the schema; drop them.
    node = {key: nullable_as_type(value) for key, value in node.items() if key != "$recursiveAnchor"}
    if node.get("$recursiveRef") == "#":
        node.pop("$recursiveRef")
    # A discriminated oneOf is chosen by its discriminator at OpenAI; JSON Schema's oneOf
    # refuses a body two branches accept (a Responses input message with a list of parts is
    # both an EasyInputMessage and an InputMessage), so here any branch may accept it.
    if "oneOf" in node and "discriminator" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        elif isinstance(node.get("type"), list) and "null" not in node["type"]:
            node["type"] = [*node["type"], "null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    return node


# id(schema) -> (schema, fast validator, explaining validator); the schema is kept so
# its id cannot be reused by another object.
_COMPILED: dict[int, tuple[dict, Any, Any]] = {}


def _compiled(schema: dict) -> tuple[Any, Any]:
    entry = _COMPILED.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _COMPILED[id(schema)] = (
            schema,
            jsonschema_rs.validator_for(nullable_as_type(schema)),
            RequestSchemaValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER),
        )
    return entry[1], entry[2]


class OpenAPI31BodyValidator(JSONRequestBodyValidator):
    """JSON bodies checked with the 2020-12 dialect; errors in OpenAI's words.

    Valid bodies (nearly all) are confirmed by jsonschema-rs in ~10 us; only an invalid
    one goes through the Python validator (~1 ms), which finds the error to report.
    Connexion makes a validator per request, so the compiled schemas live in
    ``_COMPILED``, once per operation (rebuilt per request, they cost ~10 ms of CPU a chat).
    """

    @property
    def _validator(self):
        return _compiled(self._schema)[1]

    @property
    def _fast_validator(self):
        return _compiled(self._schema)[0]

    async def _parse(self, stream, scope) -> Any:
        body = b"".join([chunk async for chunk in stream])
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
            ) from None

    def _validate(self, body: Any) -> None:
        if body is None:
            if self._nullable:
                return
            raise bad_request("The request body must be a JSON object.", code="invalid_body")
        if self._fast_validator.is_valid(body):
            return
        try:
            self._validator.validate(body)
        except ValidationError as error:
            raise _as_openai_error(error) from None


def body_validators(specification: Any, operation_ids: set[str]) -> dict[str, Callable[[Any], bool]]:
    """operationId -> whether a JSON body is valid for it, for the operations named that
    have a JSON body: the compiled schemas the body validator above uses (compiled on first use)."""
    validators = {}
    for _, _, operation in operations({"paths": specification["paths"]}):
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if operation["operationId"] in operation_ids and schema is not None:
            validators[operation["operationId"]] = lambda body, schema=schema: _compiled(schema)[0].is_valid(body)
    return validators


VALIDATOR_MAP = {
    "parameter": ParameterValidator,
    "body": {
        "application/json": OpenAPI31BodyValidator,
        "application/x-www-form-urlencoded": FormDataValidator,
        "multipart/form-data": MultiPartFormDataValidator,
    },
}

