"""Path and query parameters of the 3.1 document: parsed without ever raising, validated with
the 2020-12 dialect, errors in OpenAI's words naming the parameter.

Connexion's parser reads every parameter schema's ``type``; the OpenAI document leaves it out
where a ``$ref`` or ``anyOf`` says it (the ``metadata`` deepObject of listChatCompletions), and
the parser raised ``KeyError`` - a 500 - for ``?metadata=x``. Connexion's validator speaks
Draft 4 and answers with jsonschema's multi-line report.
"""

from __future__ import annotations

from typing import Any

from connexion.exceptions import BadRequestProblem
from connexion.uri_parsing import OpenAPIURIParser
from connexion.utils import is_null, is_nullable
from connexion.validators import ParameterValidator
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .validation import RequestSchemaValidator


def _form_type(schema: Any) -> dict:
    if not isinstance(schema, dict) or "type" in schema:
        return _with_type(schema)
    members = schema["anyOf"] if "anyOf" in schema else schema.get("oneOf", [])
    types = {member.get("type") for member in members if isinstance(member, dict)}
    types.discard("null")
    return {**schema, "type": types.pop() if len(types) == 1 else None}


def _with_type(schema: Any) -> dict:
    # An untyped schema reads as "not an array", which is what Connexion asks of it.
    return {"type": None, **schema} if isinstance(schema, dict) else {"type": None}


class ParameterParser(OpenAPIURIParser):
    """Connexion's OpenAPI parser, total: a query it cannot make sense of is a 400."""

    @property
    def param_schemas(self) -> dict[str, dict]:
        return {name: _with_type(definition.get("schema")) for name, definition in self.param_defns.items()}

    def resolve_query(self, query_data):
        # ``name[]=a&name[]=b``, the official SDKs' array format (the usage operations'
        # ``group_by``), is an array parameter ``name`` as much as ``name=a&name=b``.
        query_data = {
            (name[:-2] if name.endswith("[]") and name[:-2] in self.param_defns else name): value
            for name, value in query_data.items()
        }
        try:
            return super().resolve_query(query_data)
        except Exception:
            names = ", ".join(sorted(query_data)) or "none"
            raise BadRequestProblem(detail=f"Invalid query string: the query parameters ({names}) could not be parsed.") from None

    @property
    def form_defns(self) -> dict[str, dict]:
        # A multipart field typed by ``anyOf`` (createTranscription's ``stream``: a boolean
        # or null) is coerced as its one non-null type, else left as sent.
        return {name: _form_type(schema) for name, schema in super().form_defns.items()}

    def resolve_form(self, form_data):
        # ``name[]``, the SDKs' way to send an array field (``include[]``), is ``name``.
        defns = self.form_defns
        form_data = {
            (name[:-2] if name.endswith("[]") and name[:-2] in defns else name): value for name, value in form_data.items()
        }
        return super().resolve_form(form_data)

    def resolve_path(self, path_data):
        try:
            return super().resolve_path(path_data)
        except Exception:
            raise BadRequestProblem(detail="Invalid path parameters.") from None


class OpenAPI31ParameterValidator(ParameterValidator):
    """Parameters checked against their 2020-12 schemas; the first error, named."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        name = param.get("name", param_name)
        if is_nullable(param) and is_null(value):
            return None
        if value is None:
            if param.get("required"):
                return f"Missing required {parameter_type} parameter '{name}'."
            return None
        schema = param.get("schema", {})
        error = best_match(
            RequestSchemaValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).iter_errors(value)
        )
        if error is None:
            return None
        return f"Invalid value for {parameter_type} parameter '{name}': {error.message}."
