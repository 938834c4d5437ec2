"""Multipart bodies with object fields, as OpenAI's clients send them.

OpenAI's SDKs send an object field of a multipart body as bracketed fields
(``expires_after[anchor]=created_at``, ``expires_after[seconds]=3600``). Connexion's
multipart validator does not know them and refuses the request (400 "Additional
properties are not allowed"). This validator folds them into the object before
validating, and leaves the folded objects in the scope for the controller
(``folded_objects``): Connexion parses the form again for the handler and drops them.

OpenAPI's own encoding, a JSON part, is still refused (400): Connexion's handler-side
typing calls ``dict()`` on the part's string and fails (a 500), so accepting it here would
need the body re-encoded for the handler.
"""

from __future__ import annotations

import re
import tempfile
from typing import Any

from connexion.exceptions import BadRequestProblem
from connexion.validators import MultiPartFormDataValidator
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException
from starlette.types import Message, Receive, Scope

from ..errors import bad_request

_BRACKETED = re.compile(r"^([^\[\]]+)\[([^\[\]]+)\]$")


def _leaf(value: Any, schema: dict[str, Any]) -> Any:
    """A bracketed field's string as the type its schema declares."""
    kind = schema.get("type")
    if isinstance(value, str):
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
        except ValueError:
            return value
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
    return value


def object_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema a field may take (itself, or one of its ``anyOf`` members:
    createTranscription's ``chunking_strategy`` is ``"auto"`` or a ``server_vad`` object)."""
    if schema.get("type") == "object" or "properties" in schema or "$ref" in schema:
        return schema
    for member in schema.get("anyOf", schema.get("oneOf", [])):
        found = object_schema(member) if isinstance(member, dict) else None
        if found is not None:
            return found
    return None


def form_object(form: dict[str, Any], name: str, schema: dict[str, Any] | None = None) -> Any:
    """Field ``name`` of a parsed form as sent, else its bracketed fields gathered into an
    object; None when neither is there. Values may be lists (one per occurrence)."""
    schema = schema or {}

    def single(value: Any) -> Any:
        return value[0] if isinstance(value, list) and len(value) == 1 else value

    value = single(form.get(name))
    if value is not None:
        return value
    gathered = {}
    for key, item in form.items():
        match = _BRACKETED.match(key)
        if match and match.group(1) == name:
            sub = match.group(2)
            gathered[sub] = _leaf(single(item), schema.get("properties", {}).get(sub, {}))
    return gathered or None


SCOPE_KEY = "llm_backend.form_objects"


def folded_objects(scope: Scope) -> dict[str, Any]:
    """The object fields the validator folded for this request. Connexion parses the form
    again for the controller and drops the bracketed fields, so they travel in the scope."""
    return scope.get("extensions", {}).get(SCOPE_KEY, {})


def request_folded_objects() -> dict[str, Any]:
    """``folded_objects`` of the request being served (Connexion's own scope: its routing
    copies the scope, so the one our middleware saw does not have them)."""
    from connexion import request

    return folded_objects(request.scope)


FIELDS_KEY = "llm_backend.form_fields"


def request_form_fields() -> dict[str, Any]:
    """Every field of the request's validated form but its files, as validation saw them:
    Connexion's handler-side typing drops a field whose schema has no ``type`` of its own
    (createTranscription's ``model``, ``stream``, ``chunking_strategy`` are ``anyOf``)."""
    from connexion import request

    return request.scope.get("extensions", {}).get(FIELDS_KEY, {})


SPOOL_IN_MEMORY = 1 << 20
REPLAY_CHUNK = 1 << 20


class OpenAIMultiPartValidator(MultiPartFormDataValidator):
    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """Connexion's ``wrap_receive``, with the body kept in a temporary file (in memory up
        to 1 MB) instead of a list of messages: an upload of hundreds of megabytes is parsed
        here, then replayed to the handler, and must never be whole in memory."""
        if not int(Headers(scope=scope).get("content-length", 0)) and self._required:
            raise BadRequestProblem("RequestBody is required")
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        ended: list[Message] = []

        async def stream():
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    ended.append(message)
                    break
                chunk = message.get("body", b"")
                spool.write(chunk)
                yield chunk
                if not message.get("more_body"):
                    break
            yield b""

        try:
            body = await self._parse(stream(), scope=scope)
            if not (body is None and self._nullable):
                self._validate(body)
        except BaseException:
            spool.close()
            raise
        size = spool.tell()
        spool.seek(0)

        async def replayed() -> Message:
            if ended:
                return ended.pop(0)
            if spool.closed:
                return await receive()
            chunk = spool.read(REPLAY_CHUNK)
            more = spool.tell() < size
            if not more:
                spool.close()
            return {"type": "http.request", "body": chunk, "more_body": more}

        return replayed, scope

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        try:
            data = await super()._parse(stream, scope)
        except MultiPartException as exc:  # a malformed body is the client's: 400, not 500
            raise bad_request(f"Invalid multipart body: {exc.message}", code="invalid_body") from None
        if not isinstance(data, dict):
            return data
        objects = scope.setdefault("extensions", {}).setdefault(SCOPE_KEY, {})
        for name, field in self._schema.get("properties", {}).items():
            schema = object_schema(field)
            if schema is None:
                continue
            if name in data:
                continue  # sent whole (a JSON part): validated as it is
            folded = form_object(data, name, schema)
            for key in [key for key in data if _BRACKETED.match(key) and key.startswith(name + "[")]:
                del data[key]
            if folded is not None:
                data[name] = objects[name] = folded
        scope["extensions"][FIELDS_KEY] = {name: value for name, value in data.items() if not hasattr(value, "read")}
        return data
