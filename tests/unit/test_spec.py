"""The vendored document and how it is loaded and adapted."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

from jsonschema import ValidationError

from llm_backend.spec import adapter, schema_dialect, validation
from llm_backend.spec.loader import load_document

OPENAPI_DIR = Path(__file__).resolve().parents[2] / "openapi"


def recorded_sha256() -> str:
    provenance = (OPENAPI_DIR / "README.md").read_text()
    return re.search(r"sha256[^0-9a-f]*([0-9a-f]{64})", provenance).group(1)


def test_vendored_document_is_byte_identical_to_the_recorded_upstream():
    digest = hashlib.sha256((OPENAPI_DIR / "openai.yaml").read_bytes()).hexdigest()
    assert digest == recorded_sha256() == "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8"


def test_licence_is_vendored_beside_it():
    assert "MIT" in (OPENAPI_DIR / "LICENSE").read_text()


def test_cache_is_written_once_and_reused(tmp_path):
    source = tmp_path / "doc.yaml"
    source.write_text("openapi: 3.1.0\npaths: {}\n")
    cache = tmp_path / "cache"
    assert load_document(source, cache) == {"openapi": "3.1.0", "paths": {}}
    (cached,) = cache.glob("*.pickle")
    # Prove the second load reads the cache: tamper with it and see the tampered value.
    cached.write_bytes(pickle.dumps({"from": "cache"}))
    assert load_document(source, cache) == {"from": "cache"}


def test_cache_is_invalidated_when_the_document_changes(tmp_path):
    source = tmp_path / "doc.yaml"
    cache = tmp_path / "cache"
    source.write_text("version: 1\n")
    assert load_document(source, cache) == {"version": 1}
    source.write_text("version: 2\n")
    assert load_document(source, cache) == {"version": 2}


def test_an_unwritable_cache_dir_still_loads(tmp_path):
    source = tmp_path / "doc.yaml"
    source.write_text("a: 1\n")
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    assert load_document(source, blocker / "cache") == {"a": 1}


def test_controller_names_follow_tag_and_operation_id():
    operation = {"operationId": "createChatCompletion", "tags": ["Chat"]}
    assert adapter.controller_name(operation) == "llm_backend.controllers.chat.create_chat_completion"
    assert adapter.snake_case("Vector stores") == "vector_stores"
    assert adapter.snake_case("listFineTuningJobs") == "list_fine_tuning_jobs"


def test_prepare_strips_validation_only_from_unserved_operations():
    document = {
        "paths": {
            "/chat/completions": {"post": {"operationId": "createChatCompletion", "tags": ["Chat"], "requestBody": {}}},
            "/images/generations": {"post": {"operationId": "createImage", "tags": ["Images"], "requestBody": {}}},
        }
    }
    prepared = adapter.prepare(document)
    assert "requestBody" in prepared["paths"]["/chat/completions"]["post"]
    assert "requestBody" not in prepared["paths"]["/images/generations"]["post"]
    assert "requestBody" in document["paths"]["/images/generations"]["post"], "the original stays untouched"


def _error_for(schema: dict, instance) -> ValidationError:
    validator = validation.RequestSchemaValidator(schema)
    return next(iter(validator.iter_errors(instance)))


def test_validation_errors_name_the_parameter_path():
    schema = {
        "type": "object",
        "required": ["messages"],
        "properties": {"messages": {"type": "array", "items": {"type": "object", "required": ["role"]}}},
    }
    error = validation._as_openai_error(_error_for(schema, {"messages": [{"role": "user"}, {}]}))
    assert error.param == "messages[1].role"
    assert error.code == "missing_required_parameter"
    assert validation._as_openai_error(_error_for(schema, {})).param == "messages"


def test_nullable_is_honoured_like_openai_does():
    schema = {"type": "object", "properties": {"n": {"type": "number", "nullable": True}, "m": {"type": "number"}}}
    validator = validation.RequestSchemaValidator(schema)
    assert validator.is_valid({"n": None})
    assert not validator.is_valid({"m": None})


def test_nullable_is_rewritten_for_the_fast_validator():
    schema = {"type": "object", "properties": {"n": {"type": "number", "nullable": True, "enum": [1, 2]}}}
    rewritten = schema_dialect.nullable_as_type(schema)
    assert rewritten["properties"]["n"] == {"type": ["number", "null"], "enum": [1, 2, None]}
    assert "nullable" in schema["properties"]["n"], "the original stays untouched"


def test_nullable_beside_a_one_of_alone_admits_null_in_both_validators():
    # Chat's ``prediction``: found by the strict fuzz check ("prediction": null was a 400).
    import jsonschema_rs

    branch = {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["content"]}}}
    schema = {"type": "object", "properties": {"prediction": {"nullable": True, "oneOf": [branch]}}}
    fast = jsonschema_rs.validator_for(schema_dialect.nullable_as_type(schema))
    slow = validation.RequestSchemaValidator(schema)
    for body, valid in (({"prediction": None}, True), ({"prediction": {"type": "content"}}, True), ({"prediction": 3}, False)):
        assert fast.is_valid(body) is slow.is_valid(body) is valid


def test_fast_and_python_validators_agree():
    import jsonschema_rs

    schema = {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "nullable": True},
            "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        },
    }
    fast = jsonschema_rs.validator_for(schema_dialect.nullable_as_type(schema))
    slow = validation.RequestSchemaValidator(schema)
    bodies = [
        {"model": "m"},
        {"model": "m", "temperature": None},
        {"model": "m", "temperature": 3},
        {"model": "m", "stop": ["a", "b", "c", "d", "e"]},
        {"model": 1},
        {},
        {"model": "m", "stop": "x"},
    ]
    assert [fast.is_valid(body) for body in bodies] == [slow.is_valid(body) for body in bodies]


def test_schemas_are_compiled_once_per_operation_not_per_request(tmp_path, monkeypatch):
    """Connexion makes a body validator per request; compiling the chat schema each time
    cost ~10 ms of CPU per request. Counted through the real app (no local model)."""
    import jsonschema_rs
    from starlette.testclient import TestClient

    from llm_backend.app import create_app
    from llm_backend.settings import Settings
    from tests.support.server import shared_cache_settings

    compiled = []
    real = jsonschema_rs.validator_for
    monkeypatch.setattr(jsonschema_rs, "validator_for", lambda schema, **kw: compiled.append(1) or real(schema, **kw))
    app = create_app(Settings(local_models=False, data_dir=tmp_path, **shared_cache_settings()))
    body = {"model": "nobody-serves-this", "messages": [{"role": "user", "content": "Hi"}]}
    with TestClient(app, base_url="http://localhost") as http:  # a keyless app refuses a foreign Host
        answers = [http.post("/v1/chat/completions", json=body).status_code for _ in range(3)]
        invalid = http.post("/v1/chat/completions", json={"model": "x"})
    assert answers == [404, 404, 404], "validated, then refused by routing"
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "messages"
    assert len(compiled) == 1


def test_a_body_schema_is_compiled_without_the_components_connexion_attaches():
    from llm_backend.spec.schema_dialect import _body_only

    resolved = {"type": "object", "properties": {"a": {"type": "string"}}, "components": {"schemas": {"Big": {}}}}
    assert "components" not in _body_only(resolved)
    # A reference left unresolved still needs them.
    referring = {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Big"}}, "components": {"schemas": {"Big": {}}}}
    assert _body_only(referring) is referring
