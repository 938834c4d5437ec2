"""Request validation for the 3.1 document: JSON Schema 2020-12 (``schema_dialect.py``:
schemas compiled once per operation), errors in OpenAI's words naming the offending
parameter, the one body check every lane calls, and the body validator Connexion calls it
through."""

from __future__ import annotations

import re
from typing import Any

from connexion.validators import JSONRequestBodyValidator
from jsonschema import ValidationError
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from .. import errors
from ..errors import OpenAIError
from ..http import context
from ..http.body import parse_json, read_body
from ..json.text import LARGE_BODY, MAX_VALUES
from ..off_loop import off_loop
from . import leniency
from .schema_dialect import RequestSchemaValidator, _compiled, _shown, _valid_in_slices  # noqa: F401 (RequestSchemaValidator: its users')
from .unknown_fields import extension_error, unknown_fields, unknown_fields_error


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
        return errors.missing_required_parameter(param)
    if error.validator == "type":
        return errors.invalid_type(param, error.message)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # A schema that closes its object (createEmbedding's): OpenAI's words for unknown fields.
        known = error.schema.get("properties") or {}
        extra = [key for key in error.instance if key not in known]
        prefix = f"{param}." if param else ""
        return unknown_fields_error([prefix + key for key in extra] or [param or ""], context.record().operation_id)
    return errors.invalid_value(param, error.message)


# Where the body validator leaves the body it parsed and checked, for the handler
# (``spec/adapter.py`` has Connexion's request read it there, not parse the bytes again).
CHECKED_BODY = "llm_backend.checked_body"


class OpenAPI31BodyValidator(JSONRequestBodyValidator):
    """JSON bodies checked with the 2020-12 dialect; errors in OpenAI's words.

    Valid bodies (nearly all) are confirmed by jsonschema-rs in ~10 us; only an invalid
    one goes through the Python validator (~1 ms), which finds the error to report.
    Connexion makes a validator per request, so the compiled schemas live in
    ``_COMPILED``, once per operation (rebuilt per request, they cost ~10 ms of CPU a chat).

    The body is parsed and checked once (``checked_json``, off the event loop when large)
    and handed to the handler as checked, with OpenAI's defaults set: Connexion would parse
    the bytes again on the loop for the handler, and re-encode a body it changed.
    """

    @property
    def _validator(self):
        return _compiled(self._schema)[1]

    @property
    def _fast_validator(self):
        return _compiled(self._schema)[0]

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        if not int(Headers(scope=scope).get("content-length", 0)):
            return await super().wrap_receive(receive, scope=scope)  # no body: the document's rules
        raw, receive = await read_body(receive)
        if raw is None or not raw.strip():
            self._validate(None)
            return receive, scope
        body = await checked_json(self._schema, raw, context.record().operation_id)
        scope.setdefault("extensions", {})[CHECKED_BODY] = body
        context.record().raw_body = raw  # a body passed on as the client sent it (families/messages/controller.py)
        return receive, scope

    def _validate(self, body: Any) -> None:
        if body is None:
            # No body where the document makes it optional (createConversation's): as
            # ``{}`` (found by the strict fuzz checks: it was a 400).
            if self._nullable or not self._required:
                return
            raise errors.invalid_body()
        check_body(self._schema, body, context.record().operation_id)


async def checked_json(schema: dict, raw: bytes, operation_id: str | None) -> Any:
    """A raw JSON body parsed and checked as every lane checks it (``parse_json``, then
    ``check_body``), or the 400 it gets: on the event loop for a small body, in a thread
    for a large one (``off_loop.py``: the parse, the schema, the unknown-field walk are all
    sized by the input)."""
    return await off_loop(len(raw) > LARGE_BODY, _parsed_and_checked, schema, raw, operation_id, max_body_values())


def max_body_values() -> int:
    """The values and keys a body may hold (``max_body_values``; outside a request, its default)."""
    try:
        return context.current().settings.max_body_values
    except LookupError:
        return MAX_VALUES


def _parsed_and_checked(schema: dict, raw: bytes, operation_id: str | None, max_values: int = MAX_VALUES) -> Any:
    body = parse_json(raw, max_values)
    check_body(schema, body, operation_id, large=len(raw) > LARGE_BODY)
    return body


def _served_here(body: Any, operation_id: str | None) -> bool:
    """Whether ``body`` is answered by this service's own code (``ModelRegistry.served_here``;
    or no model is named: this service itself), where every field must be one we honour;
    a body relayed or forwarded to an upstream keeps whatever extensions its API defines."""
    model = body.get("model")
    if not isinstance(model, str):
        return True
    try:
        registry = context.current().registry
    except LookupError:  # outside a request (unit tests): the local rule
        return True
    return registry.served_here(operation_id, model)


def local_problem(schema: dict, body: Any, operation_id: str | None) -> OpenAIError | None:
    """The one rule for fields beyond the spec, for every lane (the fast lane, Connexion,
    the WebSocket's events): for a request served here, an unknown field is OpenAI's 400
    and an extension field must be valid (spec/unknown_fields.py), and a body that passes
    gets OpenAI's defaults of the fields its API accepts left out (spec/leniency.py, set in
    place); for one an upstream answers, nothing. The unknown-field walk looks up what it
    found in the caller's earlier bodies (``unknown_fields.Verdicts``: an agent's history)."""
    if not isinstance(body, dict) or not _served_here(body, operation_id):
        return None
    fields = unknown_fields(schema, body, operation_id, context.current_owner())
    if fields:
        return unknown_fields_error(fields, operation_id)
    problem = extension_error(body, operation_id)
    if problem is None:
        leniency.fill(body, operation_id)
    return problem


def check_body(schema: dict, body: Any, operation_id: str | None = None, large: bool = False) -> None:
    """Raise the error the body validator answers for ``body`` against ``schema`` (and the
    local-model rule, given the operation): every lane's check (request bodies, the
    Responses WebSocket mode's events, batch lines). A ``large`` body (checked off the
    event loop) is judged in slices."""
    fast, explaining = _compiled(schema)
    shown = _shown(body) if large else body
    if not (_valid_in_slices(schema, shown) if large else fast.is_valid(body)):
        try:
            explaining.validate(shown if large else _shown(body))
        except ValidationError as error:
            raise _as_openai_error(error) from None
    problem = local_problem(schema, body, operation_id) if operation_id else None
    if problem is not None:
        raise problem
