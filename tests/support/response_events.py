"""Responses stream events checked against the OpenAI document: each event by the schema
of its ``type`` among ``ResponseStreamEvent``'s (the response objects inside included).

One deviation, OpenAI's own: a response not yet counted has ``usage: null`` (OpenAI's API
sends it so; the document types ``usage`` as an object, not required), so a null usage is
left out before the check."""

from __future__ import annotations

import functools

from llm_backend.spec.validation import RequestSchemaValidator
from tests.support.document import openai_document


@functools.cache
def _validators() -> dict:
    components = openai_document()["components"]
    names = [option["$ref"].rsplit("/", 1)[1] for option in components["schemas"]["ResponseStreamEvent"]["anyOf"]]
    return {
        components["schemas"][name]["properties"]["type"]["enum"][0]: RequestSchemaValidator(
            {"$ref": f"#/components/schemas/{name}", "components": components}
        )
        for name in names
    }


def validate_event(event: dict) -> None:
    """Raise unless ``event`` is valid for the document's schema of its type."""
    if event.get("type") == "keepalive":
        # Sent after 15 s of silence (serving/keepalive.py), as OpenAI does on long streams;
        # the document has no schema for it: its type and its number are all it carries.
        assert set(event) == {"type", "sequence_number"} and isinstance(event["sequence_number"], int), event
        return
    response = event.get("response")
    if isinstance(response, dict) and "usage" in response and response["usage"] is None:
        event = {**event, "response": {key: value for key, value in response.items() if key != "usage"}}
    _validators()[event["type"]].validate(event)
