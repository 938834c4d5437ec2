"""Errors: the catalogue (llm_backend/errors/) and the one renderer (llm_backend/http/problems.py)."""

from __future__ import annotations

import logging

from connexion import AsyncApp
from starlette.testclient import TestClient

from llm_backend import errors
from llm_backend.http import problems

BROKEN_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {"/boom": {"get": {"operationId": "tests.unit.test_errors.explode", "responses": {"200": {"description": "ok"}}}}},
}


def explode():
    # A real bug in a controller: the kind of fault no request to the real service produces
    # on purpose, so this test mounts one.
    raise RuntimeError("secret internals: /etc/passwd and sk-leaked-key")


def test_an_unexpected_exception_is_a_500_without_internals(caplog):
    app = AsyncApp(__name__)
    app.add_api(BROKEN_SPEC)
    problems.register(app)
    with caplog.at_level(logging.ERROR):
        response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert any("secret internals" in (record.exc_text or "") or record.exc_info for record in caplog.records)


def test_openai_error_body_has_exactly_the_four_fields():
    body = errors.OpenAIError(404, "nope", param="model", code="model_not_found").body()
    assert body == {"error": {"message": "nope", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}


def test_context_length_message_follows_openai_wording():
    from llm_backend.backends.llama.engine.errors import ContextError

    error = ContextError(5000, 2048, "messages")
    assert error.status == 400 and error.code == "context_length_exceeded"
    assert error.message.startswith("This model's maximum context length is 2048 tokens.")
