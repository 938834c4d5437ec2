"""The Responses WebSocket mode's client events, checked by the spec.

A ``response.create`` event is the document's ``ResponsesClientEventResponseCreate``: an
envelope (``type``, ``stream_id``) and ``CreateResponse``'s fields. The envelope is checked
against its own schema in the document, and the rest exactly as the body of
``POST /v1/responses`` is (the same compiled schema, the same error wording): the two ways
in accept and refuse alike.

And ``generate``, this mode's own field, which the vendored document does not have (OpenAI's
SDKs do: "Set to false to prepare request state without model output; the response ID can
be used as previous_response_id on a later turn"; Codex sends it to warm a session up): a
boolean, kept in the body only when false, for ``serving/responses/service.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import errors
from ..json.types import Json
from . import validation

# A checked event: the createResponse body it carries, and its lane (``stream_id``).
CheckEvent = Callable[..., tuple[Json, str | None]]

ENVELOPE = ("type", "stream_id")
GENERATE = "generate"


def envelope_schema(document: Json) -> Json:
    """The envelope part of ``ResponsesClientEventResponseCreate`` (it holds no ``$ref``)."""
    [envelope, _create_response] = document["components"]["schemas"]["ResponsesClientEventResponseCreate"]["allOf"]
    return envelope


def response_create_checker(envelope: Json, create_response: Json) -> CheckEvent:
    """A checker of client events: ``envelope`` from the document (``envelope_schema``),
    ``create_response`` the resolved body schema of ``createResponse``."""

    def check(event: Any, large: bool = False) -> tuple[Json, str | None]:
        """``large``: an event checked off the event loop, judged in slices (``check_body``)."""
        if not isinstance(event, dict):
            raise errors.invalid_client_event()
        validation.check_body(envelope, {key: event[key] for key in ENVELOPE if key in event})
        body = {key: value for key, value in event.items() if key not in (*ENVELOPE, GENERATE)}
        generate = event.get(GENERATE, True)
        if not isinstance(generate, bool):
            raise errors.invalid_type(GENERATE, "expected a boolean")
        validation.check_body(create_response, body, "createResponse", large)
        return (body if generate else {**body, GENERATE: False}), event.get("stream_id")

    return check
